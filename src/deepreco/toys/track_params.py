"""End-to-end track parameters: train the Conv + LSTM model on 2D toy images and check its uncertainties.

Training runs in two phases: mean-squared error on the parameters first, then the Gaussian log-likelihood
(``losses.gaussian_nll``) for parameters and covariance together; starting the likelihood from sensible means
keeps it stable (the seed notes it "does get unstable"). Calibration is judged by the *pulls*
``(y - y_pred) / sigma`` of each parameter on fresh images: a well calibrated covariance gives pulls of mean 0
and width 1, and ``r^T Sigma^-1 r`` of mean 2 (two parameters).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from deepreco.errors import DeepRecoError

from .detector import TrackImages, generate_track_images
from .losses import covariance_from_outputs, gaussian_nll
from .models.conv_lstm_params import ConvLSTMTrackParams
from .training import lr_factor, replayed_order

__all__ = ["TrackParamReport", "evaluate_track_params", "load_model", "predict_track_params", "task",
           "train_track_params"]
KIND = "toy-track-params"


@dataclass
class TrackParamReport:
    """How well the model finds slopes and intercepts, and whether its uncertainties are right."""

    mse: float  # mean squared residual over the parameters of the tracks the images hold
    nll: float  # mean log|Sigma| + r^T Sigma^-1 r
    rms: tuple[float, float]  # residual RMS of slope and intercept
    sigma: tuple[float, float]  # median predicted sigma of slope and intercept
    pull_mean: tuple[float, float]
    pull_width: tuple[float, float]  # standard deviation of the pulls: 1 when calibrated
    chi2_mean: float  # mean r^T Sigma^-1 r: 2 when calibrated
    n_tracks: int

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _phases(settings: dict, n: int, state: dict):
    """The Lightning callback of the two phases: it switches to the likelihood after ``mse_epochs`` (sooner
    when the time budget runs out), sets the learning rate of each likelihood step, and stops the run after
    a likelihood epoch once ``budget_seconds`` have passed."""
    import lightning.pytorch as pl

    epochs, batch_size, lr = int(settings["epochs"]), int(settings["batch_size"]), float(settings["learning_rate"])
    budget = settings.get("budget_seconds")

    class Phases(pl.Callback):
        def on_train_start(self, trainer, module):
            state["start"] = time.perf_counter()

        def on_train_epoch_start(self, trainer, module):
            epoch = trainer.current_epoch
            state["nll"] = epoch >= min(state["mse_epochs"], epochs - 1)
            if state["nll"] and state["nll_start"] is None:
                state["nll_start"] = (trainer.global_step, time.perf_counter() - state["start"])
                state["nll_steps"] = (epochs - epoch) * -(-n // batch_size)

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if not state["nll"]:
                return
            # a gentler step for the likelihood, whose gradients are larger, decaying to the end
            done = (trainer.global_step - state["nll_start"][0]) / state["nll_steps"]
            elapsed = time.perf_counter() - state["start"]
            if budget is not None and budget > state["nll_start"][1]:
                done = max(done, (elapsed - state["nll_start"][1]) / (budget - state["nll_start"][1]))
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = lr / 2 * lr_factor(done, warmup=0.0)

        def on_train_epoch_end(self, trainer, module):
            state["phases"].append("nll" if state["nll"] else "mse")
            if budget is not None and time.perf_counter() - state["start"] > budget:
                if state["nll"]:
                    trainer.should_stop = True
                else:  # out of time: go straight to the likelihood for one last epoch
                    state["mse_epochs"] = trainer.current_epoch + 1

    return Phases()


def track_params_task(settings: dict, model: ConvLSTMTrackParams | None = None, data: TrackImages | None = None):
    """The trainer's `Task` for the Conv + LSTM track-parameter model: ``mse_epochs`` of mean-squared error, then
    the Gaussian log-likelihood for the rest; by default on ``events`` 2D toy images
    (``generate_track_images(events, seed=[seed, 4])``, the benchmark's) and a model of ``size`` built after the
    trainer's seeding."""
    from ..training import Task, tensor_batches

    seed = int(settings["seed"])
    data = generate_track_images(int(settings["events"]), seed=[seed, 4]) if data is None else data
    build = None
    if model is None:
        build = {**(ConvLSTMTrackParams.CPU if settings["size"] == "cpu" else ConvLSTMTrackParams.SEED),
                 **(settings.get("options") or {})}
        model = ConvLSTMTrackParams(**build)
    images, target = torch.from_numpy(data.images), torch.from_numpy(data.params)
    n = len(images)
    state = {"mse_epochs": int(settings["mse_epochs"]), "nll": False, "nll_start": None, "nll_steps": None,
             "phases": [], "start": time.perf_counter()}

    def loss(net, images, target, mask):
        pred, raw_cov = net(images)
        resid = target - pred
        if state["nll"]:
            return gaussian_nll(resid, raw_cov, mask)
        return ((resid**2).sum(-1) * mask).sum() / mask.sum().clamp_min(1)

    def optimizer(net):
        return torch.optim.Adam(net.parameters(), lr=float(settings["learning_rate"])), None

    def write(net, path, settings, record):
        from ..modelfile import ModelFile, save

        if build is None:
            raise DeepRecoError(f"a {KIND} model file needs the model made from its settings")
        save(ModelFile(KIND, {"net": net.state_dict()}, {"network": build}, settings=settings, record=record), path)

    return Task(model, n, 0, tensor_batches((images, target, torch.from_numpy(data.mask())), ()), loss, optimizer,
                write, keep_best=False, info={"n_train": n, "phases": state["phases"]},
                order=replayed_order(n, seed), callbacks=(_phases(settings, n, state),))


def task(settings: dict):
    """The `Task` of kind ``toy-track-params`` (see `track_params_task`)."""
    return track_params_task(settings)


def load_model(path) -> tuple[ConvLSTMTrackParams, dict]:
    """The track-parameter model in ``path`` and its record."""
    from ..modelfile import load

    mf = load(path, KIND)
    return mf.load_into("net", ConvLSTMTrackParams(**mf.config["network"])), mf.record


def train_track_params(model: ConvLSTMTrackParams, data: TrackImages, *, epochs: int = 10, mse_epochs: int = 3,
                       batch_size: int = 64, lr: float = 2e-3, seed: int = 0, max_seconds: float | None = None,
                       progress: bool = True) -> dict:
    """Fit the model on the one trainer: ``mse_epochs`` of mean-squared error, then Gaussian log-likelihood for
    the rest.

    The likelihood phase starts at half the learning rate and decays it along a half cosine to 1 % over its
    epochs or what is left of ``max_seconds``, whichever ends first (with a constant rate the last steps' noise
    left the intercepts biased by 0.8 of their uncertainty after 15 minutes of training).
    Returns the per-epoch losses (``mse`` and ``nll``), the number of steps and the seconds taken; stops after
    ``max_seconds`` (the likelihood phase gets at least one epoch, so the covariance head is always trained).
    """
    from ..training import fit, settings_for

    settings = settings_for(KIND, overrides={"epochs": epochs, "mse_epochs": mse_epochs, "batch_size": batch_size,
                                            "learning_rate": lr, "seed": seed})
    settings["budget_seconds"], settings["events"] = max_seconds, len(data.images)
    record = fit(KIND, settings, None, progress=progress, make_task=lambda s: track_params_task(s, model, data))
    phases = record["phases"]
    return {"mse": [v for v, ph in zip(record["train_loss"], phases, strict=True) if ph == "mse"],
            "nll": [v for v, ph in zip(record["train_loss"], phases, strict=True) if ph == "nll"],
            "steps": record["steps"], "seconds": record["seconds"]}


@torch.no_grad()
def predict_track_params(model: ConvLSTMTrackParams, images: np.ndarray,
                         batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (N, K, 2) parameters and (N, K, 2, 2) covariances."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    params, covs = [], []
    for i in range(0, len(x), batch_size):
        p, c = model(x[i:i + batch_size])
        params.append(p)
        covs.append(covariance_from_outputs(c))
    return torch.cat(params).numpy(), torch.cat(covs).numpy()


def evaluate_track_params(model: ConvLSTMTrackParams, data: TrackImages) -> TrackParamReport:
    """Residuals, likelihood and pulls of the model on ``data`` (only the slots that hold a track)."""
    params, cov = predict_track_params(model, data.images)
    keep = data.mask()
    r = (data.params - params)[keep].astype(np.float64)  # (T, 2)
    c = cov[keep].astype(np.float64)  # (T, 2, 2)
    sig = np.sqrt(np.stack([c[:, 0, 0], c[:, 1, 1]], axis=1))
    pulls = r / sig
    chi2 = np.einsum("ti,tij,tj->t", r, np.linalg.inv(c), r)
    nll = np.log(np.linalg.det(c)) + chi2
    return TrackParamReport(
        mse=float((r**2).sum(1).mean()), nll=float(nll.mean()),
        rms=tuple(float(v) for v in np.sqrt((r**2).mean(0))), sigma=tuple(float(v) for v in np.median(sig, 0)),
        pull_mean=tuple(float(v) for v in pulls.mean(0)), pull_width=tuple(float(v) for v in pulls.std(0)),
        chi2_mean=float(chi2.mean()), n_tracks=int(keep.sum()))

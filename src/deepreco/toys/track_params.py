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

from .detector import TrackImages
from .losses import covariance_from_outputs, gaussian_nll
from .models.conv_lstm_params import ConvLSTMTrackParams
from .training import lr_factor

__all__ = ["TrackParamReport", "evaluate_track_params", "predict_track_params", "train_track_params"]


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


def train_track_params(model: ConvLSTMTrackParams, data: TrackImages, *, epochs: int = 10, mse_epochs: int = 3,
                       batch_size: int = 64, lr: float = 2e-3, seed: int = 0, max_seconds: float | None = None,
                       progress: bool = True) -> dict:
    """Fit the model: ``mse_epochs`` of mean-squared error, then Gaussian log-likelihood for the rest.

    The likelihood phase starts at half the learning rate and decays it along a half cosine to 1 % over its
    epochs or what is left of ``max_seconds``, whichever ends first (with a constant rate the last steps' noise
    left the intercepts biased by 0.8 of their uncertainty after 15 minutes of training).
    Returns the per-epoch losses (``mse`` and ``nll``), the number of steps and the seconds taken; stops after
    ``max_seconds`` (the likelihood phase gets at least one epoch, so the covariance head is always trained).
    """
    from rich.progress import Progress

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images, target = torch.from_numpy(data.images), torch.from_numpy(data.params)
    mask = torch.from_numpy(data.mask())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(images)
    history: dict = {"mse": [], "nll": [], "steps": 0}
    start = time.perf_counter()
    model.train()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("track parameters", total=epochs)
        for epoch in range(epochs):
            use_nll = epoch >= min(mse_epochs, epochs - 1)
            if use_nll and not history["nll"]:
                nll_start = (history["steps"], time.perf_counter() - start)
                nll_steps = (epochs - epoch) * -(-n // batch_size)
            losses = []
            for idx in torch.from_numpy(rng.permutation(n)).split(batch_size):
                if use_nll:  # a gentler step for the likelihood, whose gradients are larger, decaying to the end
                    done = (history["steps"] - nll_start[0]) / nll_steps
                    if max_seconds is not None and max_seconds > nll_start[1]:
                        done = max(done, (time.perf_counter() - start - nll_start[1]) / (max_seconds - nll_start[1]))
                    for group in opt.param_groups:
                        group["lr"] = lr / 2 * lr_factor(done, warmup=0.0)
                pred, raw_cov = model(images[idx])
                resid = target[idx] - pred
                m = mask[idx]
                if use_nll:
                    loss = gaussian_nll(resid, raw_cov, m)
                else:
                    loss = ((resid**2).sum(-1) * m).sum() / m.sum().clamp_min(1)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                losses.append(loss.item())
                history["steps"] += 1
            history["nll" if use_nll else "mse"].append(float(np.mean(losses)))
            bar.update(task, advance=1)
            elapsed = time.perf_counter() - start
            if max_seconds is not None and elapsed > max_seconds and history["nll"]:
                break
            if max_seconds is not None and elapsed > max_seconds and not use_nll:
                mse_epochs = epoch + 1  # out of time: go straight to the likelihood for one last epoch
    history["seconds"] = time.perf_counter() - start
    model.eval()
    return history


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

"""The calorimeter networks in deepreco's one model-file format (`deepreco.modelfile`): kinds ``calo-gravnet``,
``calo-edgeconv`` and ``calo-drn``; ``config`` holds the constructor arguments and the condensation thresholds
(``t_beta``, ``t_d``) the clustering needs, ``record`` what the training did."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import FormatError
from ..modelfile import SHIPPED, ModelFile, load, save

INFERENCE = ("t_beta", "t_d")  # settings of the clustering kept beside the network


def save_model(model: torch.nn.Module, path: Path, extra: dict | None = None, settings: dict | None = None) -> Path:
    """Write atomically; ``extra`` is the training record (its ``t_beta`` / ``t_d`` also go to ``config``)."""
    extra = dict(extra or {})
    config = {"network": model.config, **{k: extra[k] for k in INFERENCE if k in extra}}
    return save(ModelFile(f"calo-{model.kind}", {"net": model.state_dict()}, config, settings=dict(settings or {}),
                          record=extra), path)


def load_model(path: Path | str, kinds: tuple[str, ...] | None = None) -> tuple[torch.nn.Module, dict]:
    """The model and its record (with the config's ``t_beta`` / ``t_d``); ``kinds`` (``gravnet``, ``edgeconv``,
    ``drn``) restricts which are accepted. A bare name such as ``calo_gravnet`` is looked up among the shipped
    models."""
    from .models import MODELS

    path = Path(path)
    if not path.exists() and (SHIPPED / f"{path.name}.pt").exists():
        path = SHIPPED / f"{path.name}.pt"
    mf = load(path, tuple(f"calo-{k}" for k in (kinds or MODELS)))
    name = mf.kind.removeprefix("calo-")
    try:
        model = MODELS[name](**mf.config["network"])
    except (KeyError, TypeError) as exc:
        raise FormatError(f"{path}: {mf.kind} model file is incomplete ({type(exc).__name__} {exc})") from None
    return mf.load_into("net", model), {**mf.record, **{k: mf.config[k] for k in INFERENCE if k in mf.config}}

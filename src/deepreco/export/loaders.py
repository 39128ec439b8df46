"""Every network the export reads, through the loaders of the modules that train it: one function a kind, and
the only place this package touches a model-file format.

Each returns the torch module(s) in eval mode; ``path`` None means the model shipped with deepreco. A file of
another kind, or no model file at all, raises the loader's one-line `FormatError` / `MissingFileError`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import DeepRecoError

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "models"
TOY_SHAPE = (10, (32, 32))  # HEP.TrkX's 3D toy: 10 planes of 32 x 32 pixels


def load_lstm(path=None) -> torch.nn.Module:
    from ..errors import FormatError
    from ..reconstruct.lstm.model import load_model

    net, norm, _ = load_model(path)
    if norm.inputs_set != "polar":  # the exported network's input is the seed's (seeds, 10, 8)
        raise FormatError(f"{path}: this lstm reads {norm.inputs_set} inputs; only models of the seed's polar "
                          "inputs are exported")
    return net


def load_deepcore(path=None) -> torch.nn.Module:
    from ..deepcore.train import load_model

    return load_model(SHIPPED / "deepcore.pt" if path is None else path)[0]


def load_gnn(path=None) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The edge filter and the interaction network of a ``gnn`` model file."""
    from ..reconstruct.gnn.model import GNNModel

    model = GNNModel.load(path)
    return model.filter, model.gnn


def load_embedding(path=None) -> torch.nn.Module:
    from ..reconstruct.gnn.metric import load_embedding as load

    return load(SHIPPED / "gnn_embedding.pt" if path is None else path)[0]


def load_calo(kind: str, path=None) -> torch.nn.Module:
    """A calorimeter network of ``kind`` (gravnet, edgeconv, garnet, drn)."""
    from ..calo.modelfile import load_model

    return load_model(SHIPPED / f"calo_{kind}.pt" if path is None else path, kinds=(kind,))[0]


def load_toy(name: str, path=None) -> torch.nn.Module:
    """A toy model of the cpu sizes with its initial weights (seed 0): the toys train in their benchmark and
    write no model file, so there is none to read."""
    from ..toys.models import build_model

    if path is not None:
        raise DeepRecoError(f"{path}: the toy models have no model file; export toy models without --model")
    torch.manual_seed(0)
    return build_model(name, TOY_SHAPE[0], TOY_SHAPE[1]).eval()

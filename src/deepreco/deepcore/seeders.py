"""The seeders of the jet-core iteration by name (the registry `SEEDERS`): ``jetcore``, CMS's classical pairs of
layer-1 / layer-2 clusters along the jet (``split=True``: clusters split by K-means first), and ``deepcore``, the
network's seeds after cleaning. Each is built with its parameters and has ``reconstruct(event) -> seeds`` (event,
jet, x, y, z at layer 2 [mm], phi, eta, inv_pt [1/GeV]).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..registry import SEEDING
from .baseline import CONE, PT_MIN, Z_TOL, jetcore_seeds
from .detector import PixelBarrel
from .events import JetEvent
from .seeds import CLEAN_ANGLE, CLEAN_XY, check_scale

SEEDERS = SEEDING  # the names are listed in deepreco.registry


@SEEDERS.register("jetcore")
class JetCoreSeeding:
    """Pairs of clusters in a cone around each jet (`.baseline.jetcore_seeds`)."""

    # the parameters' ranges, checked when the seeder is made (`deepreco.registry.out_of_range`)
    ranges = {"cone": "> 0", "z_tol": "> 0", "pt_min": "> 0"}

    def __init__(self, split: bool = False, cone: float = CONE, z_tol: float = Z_TOL, pt_min: float = PT_MIN,
                 detector: PixelBarrel | None = None):
        self.split, self.cone, self.z_tol, self.pt_min = bool(split), float(cone), float(z_tol), float(pt_min)
        self.detector = detector or PixelBarrel()

    def reconstruct(self, event: JetEvent) -> pd.DataFrame:
        return jetcore_seeds(event, self.detector, split=self.split, cone=self.cone, z_tol=self.z_tol,
                             pt_min=self.pt_min)


@SEEDERS.register("deepcore")
class DeepCoreSeeding:
    """The network's seeds, cleaned across the event's windows (`.evaluate.deepcore_seeds`); ``model`` is a
    model file (None: the shipped one); ``server``: the gRPC address of a server of the exported ``deepcore``
    (`deepreco.export.client`), where the network then runs (it must serve the network of ``model``);
    ``fallback`` ``local``: in-process when the server does not answer; ``threshold_scale``: the seeds whose
    probability passes that many times the seed's thresholds (`.seeds.TRACK_THRESHOLD_SCALE` for building)."""

    # the parameters' ranges, checked when the seeder is made (`deepreco.registry.out_of_range`)
    ranges = {"clean_xy": ">= 0", "clean_angle": ">= 0", "threshold_scale": "> 0"}

    def __init__(self, model: str | Path | None = None, clean_xy: float = CLEAN_XY, clean_angle: float = CLEAN_ANGLE,
                 detector: PixelBarrel | None = None, server: str | None = None, fallback: str | None = None,
                 threshold_scale: float = 1.0):
        from ..export.client import connect
        from .evaluate import SHIPPED_MODEL
        from .train import load_model

        self.model = Path(model) if model is not None else SHIPPED_MODEL
        self.clean_xy, self.clean_angle = float(clean_xy), float(clean_angle)
        check_scale(threshold_scale)
        self.threshold_scale = float(threshold_scale)
        self.detector = detector or PixelBarrel()
        self._net, self.info = load_model(self.model)
        self.server, self.fallback = server, fallback
        remote = connect(server, ("deepcore",), fallback, what="deepcore", model=self.model)
        if remote:
            self._net = remote["deepcore"]

    def reconstruct(self, event: JetEvent) -> pd.DataFrame:
        from .evaluate import deepcore_seeds

        return deepcore_seeds(event, self._net, self.detector, self.clean_xy, self.clean_angle,
                              self.threshold_scale)[0]

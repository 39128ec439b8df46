"""A calorimeter event: its hits, and the truth of each hit when it was simulated.

- ``hits``      (hit_id, x, y, z [mm], layer, energy [GeV, calibrated], time [ns]);
- ``truth``     (hit_id, particle_id, fraction, hit_class): the particle that gave most of the hit's energy,
  its share, and the class of the hit (0 noise, 1 EM, 2 hadronic, 3 MIP); particle_id 0 is noise;
- ``fractions`` (hit_id, particle_id, fraction, energy): every particle's share of every hit;
- ``particles`` (particle_id, parent_id, pdg, kind, energy, x, y, z, eta, phi, deposited): what crossed into
  the calorimeter and counts as a particle (``kind`` is its shower class), its true energy at the face and
  the calibrated energy of its share of the hits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import EventError

HIT_COLUMNS = ("hit_id", "x", "y", "z", "layer", "energy", "time")
_NEEDED = ("x", "y", "z", "energy")


@dataclass
class CaloEvent:
    hits: pd.DataFrame
    truth: pd.DataFrame | None = None
    fractions: pd.DataFrame | None = None
    particles: pd.DataFrame | None = None
    event_id: int = 0

    def __post_init__(self):
        self.hits = check_hits(self.hits, f"event {self.event_id}")

    def __len__(self) -> int:
        return len(self.hits)

    @property
    def has_truth(self) -> bool:
        return self.truth is not None and self.particles is not None

    def features(self) -> np.ndarray:
        """(n, 5) float32: x, y, z, E, t, the seed's 5D point cloud."""
        cols = ["x", "y", "z", "energy", "time"]
        return self.hits[cols].to_numpy(np.float32)


def check_hits(hits: pd.DataFrame, where: str = "hits") -> pd.DataFrame:
    """The hits table, checked: the needed columns, finite numbers, energy >= 0; EventError otherwise.

    ``hit_id`` defaults to 1..n, ``layer`` to -1 and ``time`` to 0 when absent. Zero rows is a valid event.
    """
    if not isinstance(hits, pd.DataFrame):
        raise EventError(f"{where}: hits must be a pandas DataFrame, got {type(hits).__name__}")
    missing = [c for c in _NEEDED if c not in hits.columns]
    if missing:
        raise EventError(f"{where}: hits lack column(s) {', '.join(missing)}")
    hits = hits.copy()
    if "hit_id" not in hits:
        hits.insert(0, "hit_id", np.arange(1, len(hits) + 1))
    if "layer" not in hits:
        hits["layer"] = -1
    if "time" not in hits:
        hits["time"] = 0.0
    for c in ("x", "y", "z", "energy", "time"):
        try:
            values = hits[c].to_numpy(np.float64)
        except (TypeError, ValueError):
            raise EventError(f"{where}: column {c} is not numeric") from None
        bad = ~np.isfinite(values)
        if bad.any():
            raise EventError(f"{where}: column {c} has {int(bad.sum())} NaN or infinite value(s) "
                             f"(hit_id {hits['hit_id'].iloc[int(np.flatnonzero(bad)[0])]})")
    neg = hits["energy"].to_numpy() < 0
    if neg.any():
        raise EventError(f"{where}: {int(neg.sum())} hit(s) with negative energy "
                         f"(hit_id {hits['hit_id'].iloc[int(np.flatnonzero(neg)[0])]})")
    if hits["hit_id"].duplicated().any():
        raise EventError(f"{where}: duplicated hit_id {hits['hit_id'][hits['hit_id'].duplicated()].iloc[0]}")
    return hits.reset_index(drop=True)

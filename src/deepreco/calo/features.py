"""The networks' per-hit inputs, and the per-hit targets of the condensation training.

Inputs (9 columns, all O(1)): the position projected to the face plane (x z0/|z|, y z0/|z|) and the depth
(|z| - z0) in metres, x and y in metres, log(1 + E / 1 MeV) / 5, the time after the flight time from the
origin (clipped to +-5 ns, over 2), layer / 50, the endcap side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .geometry import C_MM_PER_NS, DEFAULT, Calorimeter

N_FEATURES = 9


def hit_features(hits: pd.DataFrame, geometry: Calorimeter = DEFAULT) -> torch.Tensor:
    x, y, z = (hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    e, t = hits["energy"].to_numpy(np.float64), hits["time"].to_numpy(np.float64)
    az = np.maximum(np.abs(z), 1.0)
    scale = geometry.z_front / az
    flight = np.sqrt(x ** 2 + y ** 2 + z ** 2) / C_MM_PER_NS
    layer = hits["layer"].to_numpy(np.float64)
    cols = [x * scale / 1000, y * scale / 1000, (az - geometry.z_front) / 1000, x / 1000, y / 1000,
            np.log1p(e * 1000) / 5, np.clip(t - flight, -5, 5) / 2, layer / 50, np.sign(z)]
    return torch.as_tensor(np.stack(cols, axis=1), dtype=torch.float32)


def oc_targets(event) -> dict[str, torch.Tensor]:
    """object_id (0 = noise), hit_class, and per hit the log of its particle's true energy over the summed
    energy of the hits it dominates (the energy head's target)."""
    truth = event.truth
    pid = truth["particle_id"].to_numpy(np.int64)
    e_hit = event.hits["energy"].to_numpy(np.float64)
    e_sum = pd.Series(e_hit).groupby(pid).sum()
    e_true = pd.Series(event.particles["energy"].to_numpy(), index=event.particles["particle_id"].to_numpy())
    ratio = e_true.reindex(pid).to_numpy() / e_sum.reindex(pid).to_numpy()
    target = np.where((pid > 0) & np.isfinite(ratio) & (ratio > 0), np.log(np.where(ratio > 0, ratio, 1.0)), 0.0)
    return {"object_id": torch.tensor(pid), "hit_class": torch.tensor(truth["hit_class"].to_numpy(np.int64)),
            "e_target": torch.as_tensor(target, dtype=torch.float32)}

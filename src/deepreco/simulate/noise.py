"""Noise hits: single cells lit at random positions of random modules, at real-event rates per volume.

The real events hold an almost fixed number of noise hits, whatever their number of particles: hits minus
the sum of the particles' ``nhits`` is 17,470, 17,520, 17,805 and 17,704 in events 1001, 1003, 1005 and
1009 (mean 17,625, spread as a Poisson count), so noise is a rate per module, not a fraction of the event.
How it splits over volumes cannot be read off the real data directly (noise is not marked there); it is
the real hits per volume minus the particle hits that this simulation gives for the same particle lists
(events 1001, 1003, 1005, 1009, averaged: 16,500 in all, a little less than the 17,600 above
because the simulated particles then left about 1.5 % more hits than their real ``nhits``). The rates were
calibrated with random nuclear interactions drawn for the TrackML lists too; without them (the lists record
their interactions) the particles leave 5.8 % more hits than their real ``nhits``, and the rates are kept:
lowering them by that excess would put the noise fraction 4 to 5 points under the real one. One exception:
the innermost pixel barrel's rate was 362, because the simulation then made hits at grazing incidence that the
real events do not have (``MIN_INCIDENCE_COS`` in :mod:`.fastsim`); the cut removes 984 particle hits from
volume 8 (mean of the four events, hardly any elsewhere), and that volume's rate is raised by as many, to
1,346, in line with the other pixel volumes (about 1,050 each). Within a volume
every module gets the same rate, and a noise hit lies uniformly on its sensor, at the centre of the one
cell it lights.
"""

from __future__ import annotations

import numpy as np

from ..detector import Detector

__all__ = ["NOISE_PER_VOLUME", "noise_hits"]

#: Mean noise hits per event and volume (calibrated as the module docstring says).
NOISE_PER_VOLUME = {7: 1052.0, 8: 1346.0, 9: 1054.0, 12: 1084.0, 13: 4800.0, 14: 1043.0, 16: 798.0,
                    17: 5510.0, 18: 804.0}


def noise_hits(detector: Detector, rng: np.random.Generator, scale: float = 1.0):
    """Noise hits as (module rows, local (k, 3) points at cell centres, ch0, ch1), sorted by module.

    Each volume gets Poisson(``scale`` x its rate) hits, spread evenly over its modules.
    """
    vol = detector.ids[:, 0]
    rows_all, uv_all = [], []
    for volume, rate in sorted(NOISE_PER_VOLUME.items()):
        rows = np.flatnonzero(vol == volume)
        if rows.size == 0:
            continue
        k = int(rng.poisson(rate * scale))
        mods = rows[rng.integers(0, rows.size, k)]
        minhu, maxhu, hv = detector.half_widths[mods].T
        # uniform on the trapezoid: v from its density (linear in the width), then u across the width
        a = minhu / np.maximum(minhu + maxhu, 1e-12)
        x = rng.random(k)
        # inverse of the CDF F(s) = 2 a s + (1 - 2a) s^2 of the density 2 (a + (1 - 2a) s) on s in [0, 1]
        lin = 1.0 - 2.0 * a
        curved = np.abs(lin) > 1e-9
        s = np.where(curved, (-a + np.sqrt(a * a + lin * x)) / np.where(curved, lin, 1.0), x)
        s = np.clip(s, 0.0, 1.0)
        v = (2.0 * s - 1.0) * hv
        hu = minhu + (maxhu - minhu) * s
        u = (2.0 * rng.random(k) - 1.0) * hu
        rows_all.append(mods)
        uv_all.append(np.column_stack([u, v]))
    mods = np.concatenate(rows_all) if rows_all else np.zeros(0, np.int64)
    uv = np.concatenate(uv_all) if uv_all else np.zeros((0, 2))
    ch0, ch1 = detector.local_to_cells(uv, mods)
    ch0 = np.clip(ch0, 0, detector.n_cells[mods, 0] - 1)
    ch1 = np.clip(ch1, 0, detector.n_cells[mods, 1] - 1)
    centre = detector.cells_to_local(ch0, ch1, mods)
    return mods, centre, ch0, ch1

"""The particle table every generator returns, and the checks a particle list must pass.

The table is the TrackML ``particles`` table (particle_id, vx, vy, vz [mm], px, py, pz [GeV], q, nhits) plus
``particle_type``, the PDG id. Generators fill ``nhits`` with 0: the simulation counts the hits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import DeepRecoError, EventError
from ..event import OPTIONAL_DTYPES, PARTICLES_DTYPES, coerce_table

PARTICLE_COLUMNS = (*PARTICLES_DTYPES, "particle_type")
TABLE_DTYPES = {**PARTICLES_DTYPES, **OPTIONAL_DTYPES["particles"]}

# The envelope of the TrackML tracker (outermost strip barrel at r = 1.02 m, last endcap disk at |z| = 2.96 m),
# with a margin: a particle made outside it never crosses a module, so it only makes tables bigger.
TRACKER_R_MM = 1100.0
TRACKER_Z_MM = 3100.0

if TYPE_CHECKING:  # pandas is imported where a table is made: an option's check runs without it
    import pandas as pd


class GeneratorError(DeepRecoError, ValueError):
    """A generator was asked for something it cannot make: an unknown name, option or species."""


def as_rng(seed) -> np.random.Generator:
    """A numpy Generator from an int seed, a Generator (used as it is) or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise GeneratorError(f"seed must be an int or a numpy.random.Generator, got {type(seed).__name__}")
    return np.random.default_rng(seed)


def particle_table(particle_id, vertex, momentum, q, particle_type, **extra) -> pd.DataFrame:
    """Assemble the particle table from arrays: vertex and momentum are (n, 3) in mm and GeV.

    Extra keyword arrays become extra columns after the TrackML ones (e.g. ``collision``).
    """
    vertex = np.asarray(vertex, dtype=np.float64).reshape(-1, 3)
    momentum = np.asarray(momentum, dtype=np.float64).reshape(-1, 3)
    cols = {
        "particle_id": np.asarray(particle_id, dtype=np.int64),
        "vx": vertex[:, 0], "vy": vertex[:, 1], "vz": vertex[:, 2],
        "px": momentum[:, 0], "py": momentum[:, 1], "pz": momentum[:, 2],
        "q": np.asarray(q), "nhits": np.zeros(len(vertex), dtype=np.int32),
        "particle_type": np.asarray(particle_type),
    }
    out = {c: np.ascontiguousarray(v, dtype=TABLE_DTYPES[c]) for c, v in cols.items()}
    out.update({k: np.asarray(v) for k, v in extra.items()})
    import pandas as pd

    return pd.DataFrame(out, index=pd.RangeIndex(len(vertex)))


def pt_eta(px, py, pz) -> tuple[np.ndarray, np.ndarray]:
    """Transverse momentum and pseudorapidity; a particle along the beam gets eta = +-inf."""
    px, py, pz = (np.asarray(a, dtype=np.float64) for a in (px, py, pz))
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(pz / pt)
    return pt, eta


def check_particles(particles: pd.DataFrame, source: str | None = None, error=EventError) -> pd.DataFrame:
    """Cast a particle list to the table's dtypes and check what a simulation relies on.

    Raises ``error`` (EventError by default) naming ``source``: a missing column, a non-numeric value,
    a NaN or infinite vertex or momentum, q not in {-1, 0, 1}, a particle_id that is not positive or not unique.
    A missing ``particle_type`` becomes 0 ("unknown"); a missing ``nhits`` becomes 0 (the simulation counts
    the hits).
    """
    import pandas as pd

    where = source or "particles"
    if isinstance(particles, pd.DataFrame) and "nhits" not in particles.columns:
        particles = particles.assign(nhits=0)
    try:
        table = coerce_table(particles, "particles", where)
    except EventError as exc:
        raise error(str(exc)) from None
    q = table["q"].to_numpy()
    bad = (q < -1) | (q > 1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise error(f"{where}: column q has {int(bad.sum())} value(s) outside -1, 0, 1 "
                    f"(q = {q[row]} at row {row + 1})")
    pid = table["particle_id"].to_numpy()
    bad = pid <= 0
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise error(f"{where}: particle_id must be positive (0 is noise), got {pid[row]} at row {row + 1}")
    dup = pd.Series(pid).duplicated().to_numpy()
    if dup.any():
        raise error(f"{where}: {int(dup.sum())} duplicated particle_id (e.g. {pid[dup][0]})")
    if "particle_type" not in table.columns:
        table["particle_type"] = np.zeros(len(table), dtype=np.int32)
    extras = [c for c in table.columns if c not in PARTICLE_COLUMNS]
    return table[[*PARTICLE_COLUMNS, *extras]]

"""Where a particle ends: the production vertex of its daughters, read from the particle list.

A full particle list (the TrackML ones) holds the secondaries of decays and material interactions beside the
particles that made them, so a particle stops where its daughters start; a simulation that ignored this
would carry a pion that interacted in the pixel support tube through all the strip layers. TrackML particle
ids are the ACTS (Fatras) barcode of the time,

    bits 63-52 vertex | 51-36 primary | 35-24 generation | 23-12 secondary | 11-0 process,

so a particle's descendants share its (vertex, primary) and have a higher generation. In event 1001, 928 of
the 6,981 generation-0 particles have listed daughters, and stopping them there brings the share of
particles whose simulated hit count is within one of the real one from 65 % to 72 %. All the daughters of the
real lists start on material surfaces (the beam pipe, the layers): they come from interactions with the
material, and ending their parents there is right (for the 672 primaries above 0.3 GeV of event 1001 that
end so, 90 % are within one hit of their real ``nhits`` with the end, 8 % without it). Since such a list
records its interactions, the simulation draws no further random ones for it (:func:`has_lineage`).

Each vertex of generation-(g+1) particles is given to the generation-g particle of the same primary whose
production vertex is nearest to it (for g = 0 that particle is unique: the primary itself), and a particle
ends at the nearest of the vertices given to it. Lists with other ids (the generators') have no ends, and
their particles stop only by the random nuclear interactions of :mod:`.propagate`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["end_points", "has_lineage", "made_by_material"]

_GENERATION_SHIFT = 24
_PRIMARY_SHIFT = 36


def _looks_like_barcode(pid: np.ndarray) -> bool:
    # TrackML ids carry a vertex number >= 1 in the top 12 bits and a process code in the bottom 12
    return pid.size > 0 and bool(np.all(pid >> 52 > 0)) and bool(np.all(pid > 0))


def has_lineage(particle_id) -> bool:
    """Whether the ids are TrackML (Fatras) barcodes, i.e. the list records its particles' descendants."""
    return _looks_like_barcode(np.asarray(particle_id, dtype=np.int64))


def made_by_material(particle_id) -> np.ndarray:
    """Whether each particle is a secondary of an interaction with the material (generation > 0 of a TrackML
    list; False for every particle of lists without lineage)."""
    pid = np.asarray(particle_id, dtype=np.int64)
    if not _looks_like_barcode(pid):
        return np.zeros(pid.size, bool)
    return ((pid >> _GENERATION_SHIFT) & 0xFFF) > 0


def end_points(particle_id, vertex) -> np.ndarray:
    """(n, 3) end point of each particle (mm), NaN where the list records none."""
    pid = np.asarray(particle_id, dtype=np.int64)
    vertex = np.asarray(vertex, dtype=np.float64).reshape(-1, 3)
    end = np.full((pid.size, 3), np.nan)
    if not _looks_like_barcode(pid):
        return end
    key = pid >> _PRIMARY_SHIFT
    gen = (pid >> _GENERATION_SHIFT) & 0xFFF
    # one row per distinct (primary, generation, vertex) of a daughter
    frame = pd.DataFrame({"key": key, "gen": gen, "x": vertex[:, 0], "y": vertex[:, 1], "z": vertex[:, 2]})
    daughters = frame[frame["gen"] > 0].drop_duplicates(["key", "gen", "x", "y", "z"])
    if daughters.empty:
        return end
    parents = pd.DataFrame({"key": key, "gen": gen + 1, "row": np.arange(pid.size)})
    pairs = daughters.merge(parents, on=["key", "gen"], how="inner")
    if pairs.empty:
        return end
    rows = pairs["row"].to_numpy()
    dv = pairs[["x", "y", "z"]].to_numpy()
    start = vertex[rows]
    pairs["d_parent"] = np.linalg.norm(dv - start, axis=1)
    # a daughter vertex belongs to the nearest candidate parent; a parent ends at its nearest daughter vertex
    pairs["vid"] = pairs.groupby(["key", "gen", "x", "y", "z"], sort=False).ngroup()
    pairs = pairs.sort_values(["vid", "d_parent", "row"], kind="stable").drop_duplicates("vid")
    pairs = pairs.sort_values(["row", "d_parent"], kind="stable").drop_duplicates("row")
    end[pairs["row"].to_numpy()] = pairs[["x", "y", "z"]].to_numpy()
    return end

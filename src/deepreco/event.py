"""The event model: the TrackML tables, as they are in the challenge's files.

An `Event` holds up to four tables with the TrackML column names and dtypes, so that real TrackML files load
unchanged and whatever deepreco writes can be read by any TrackML tool:

- ``hits``      (hit_id, x, y, z, volume_id, layer_id, module_id), always there (it may have zero rows);
- ``cells``     (hit_id, ch0, ch1, value), optional;
- ``particles`` (particle_id, vx, vy, vz, px, py, pz, q, nhits; optional particle_type), optional;
- ``truth``     (hit_id, particle_id, tx, ty, tz, tpx, tpy, tpz; weight), optional (test events have none).

Units are mm, GeV and ns; particle_id 0 marks noise. Extra columns are kept as they are.

>>> import pandas as pd
>>> from deepreco.event import Event
>>> hits = pd.DataFrame({"hit_id": [1, 2], "x": [31.0, 72.0], "y": [0.5, 1.0], "z": [10.0, 23.0],
...                      "volume_id": 8, "layer_id": [2, 4], "module_id": 1})
>>> event = Event(hits=hits, event_id=7)                     # checked and cast to the TrackML dtypes
>>> event.n_hits, str(event.hits["x"].dtype)
(2, 'float32')
>>> Event(hits=hits.drop(columns="z"))                       # doctest: +ELLIPSIS
Traceback (most recent call last):
deepreco.errors.EventError: ...missing column z...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas is imported where a table is made: a command's checks run without it
    import pandas as pd

from .errors import EventError

# The dtypes of the challenge's files (trackml-library `dataset.py` reads them with these).
HITS_DTYPES = {
    "hit_id": "int32", "x": "float32", "y": "float32", "z": "float32",
    "volume_id": "int32", "layer_id": "int32", "module_id": "int32",
}
CELLS_DTYPES = {"hit_id": "int32", "ch0": "int32", "ch1": "int32", "value": "float32"}
PARTICLES_DTYPES = {
    "particle_id": "int64", "vx": "float32", "vy": "float32", "vz": "float32",
    "px": "float32", "py": "float32", "pz": "float32", "q": "int32", "nhits": "int32",
}
TRUTH_DTYPES = {
    "hit_id": "int32", "particle_id": "int64", "tx": "float32", "ty": "float32", "tz": "float32",
    "tpx": "float32", "tpy": "float32", "tpz": "float32",
}
# Columns that may be absent; when present they have these dtypes.
OPTIONAL_DTYPES = {
    "particles": {"particle_type": "int32"},
    "truth": {"weight": "float32"},
}
DTYPES = {"hits": HITS_DTYPES, "cells": CELLS_DTYPES, "particles": PARTICLES_DTYPES, "truth": TRUTH_DTYPES}
PARTS = tuple(DTYPES)
# Columns where a NaN means a broken file rather than a missing value.
_FINITE = {
    "hits": ("x", "y", "z"),
    "cells": ("value",),
    "particles": ("vx", "vy", "vz", "px", "py", "pz"),
    "truth": ("tx", "ty", "tz", "tpx", "tpy", "tpz"),
}


def _example(values) -> str:
    values = np.asarray(values)
    more = f" and {len(values) - 1} more" if len(values) > 1 else ""
    return f"{values[0]}{more}"


def coerce_table(df: pd.DataFrame, part: str, source: str | None = None) -> pd.DataFrame:
    import pandas as pd

    """Check one table's columns and cast them to the TrackML dtypes.

    Raises `EventError` naming ``source`` (a file name, or the part) and the first fault found: a missing
    column, a non-numeric or non-integer value, a NaN where a number is needed.
    """
    where = source or part
    if not isinstance(df, pd.DataFrame):
        raise EventError(f"{where}: expected a pandas DataFrame for {part}, got {type(df).__name__}")
    required = DTYPES[part]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise EventError(f"{where}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                         f"(has {', '.join(map(str, df.columns)) or 'none'})")
    dtypes = dict(required)
    dtypes.update({c: t for c, t in OPTIONAL_DTYPES.get(part, {}).items() if c in df.columns})
    out = {}
    for col in df.columns:
        if col not in dtypes:
            out[col] = df[col].to_numpy()
            continue
        values = df[col]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            numeric = pd.to_numeric(values, errors="coerce")
            bad = numeric.isna() & values.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise EventError(f"{where}: column {col} has a non-numeric value {values.iloc[row]!r} "
                                 f"(row {row + 1})")
            values = numeric
        arr = values.to_numpy(dtype="float64" if values.dtype.kind == "f" else None)
        if np.dtype(dtypes[col]).kind == "i":
            if arr.dtype.kind == "f":
                nan = np.isnan(arr)
                if nan.any():
                    raise EventError(f"{where}: column {col} has {int(nan.sum())} missing value(s) "
                                     f"(row {int(np.flatnonzero(nan)[0]) + 1})")
                frac = arr != np.round(arr)
                if frac.any():
                    row = int(np.flatnonzero(frac)[0])
                    raise EventError(f"{where}: column {col} has a non-integer value {arr[row]} (row {row + 1})")
            info = np.iinfo(dtypes[col])
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise EventError(f"{where}: column {col} has values outside the {dtypes[col]} range")
        out[col] = arr.astype(dtypes[col], copy=False)
    table = pd.DataFrame(out, index=pd.RangeIndex(len(df)))
    for col in _FINITE[part]:
        bad = ~np.isfinite(table[col].to_numpy())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise EventError(f"{where}: column {col} has {int(bad.sum())} NaN or infinite value(s) "
                             f"(first at row {row + 1})")
    return table


def _unique(table: pd.DataFrame, col: str, where: str) -> None:
    dup = table[col].duplicated()
    if dup.any():
        raise EventError(f"{where}: {int(dup.sum())} duplicated {col} (e.g. {col} "
                         f"{table[col][dup].iloc[0]})")


@dataclass
class Event:
    """One event: the TrackML tables, validated on construction.

    ``sources`` maps each part to where it came from (a file name), so that errors can name it.
    """

    hits: pd.DataFrame
    particles: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None
    cells: pd.DataFrame | None = None
    event_id: int | None = None
    sources: dict[str, str] = field(default_factory=dict, repr=False)
    validate: bool = field(default=True, repr=False)

    def __post_init__(self):
        if self.validate:
            self.check()

    def _where(self, part: str) -> str:
        return self.sources.get(part, part)

    def check(self) -> Event:
        """Cast every table to the TrackML dtypes and check the tables against each other.

        Raises `EventError` on the first fault: a missing column, a NaN coordinate, a duplicated hit_id or
        particle_id, a truth or cells row whose hit is not in hits, a hit without a truth row, a particle
        in truth that is not in particles.
        """
        if self.hits is None:
            raise EventError("an event needs a hits table")
        self.hits = coerce_table(self.hits, "hits", self.sources.get("hits"))
        _unique(self.hits, "hit_id", self._where("hits"))
        hit_ids = self.hits["hit_id"].to_numpy()
        for part in ("cells", "particles", "truth"):
            if getattr(self, part) is not None:
                setattr(self, part, coerce_table(getattr(self, part), part, self.sources.get(part)))
        if self.cells is not None:
            unknown = ~np.isin(self.cells["hit_id"].to_numpy(), hit_ids)
            if unknown.any():
                raise EventError(f"{self._where('cells')}: {int(unknown.sum())} cell(s) of hits not in hits "
                                 f"(hit_id {_example(np.unique(self.cells['hit_id'].to_numpy()[unknown]))})")
        if self.particles is not None:
            _unique(self.particles, "particle_id", self._where("particles"))
        if self.truth is not None:
            truth = self.truth
            _unique(truth, "hit_id", self._where("truth"))
            truth_ids = truth["hit_id"].to_numpy()
            unknown = ~np.isin(truth_ids, hit_ids)
            if unknown.any():
                raise EventError(f"{self._where('truth')}: {int(unknown.sum())} truth hit(s) not in hits "
                                 f"(hit_id {_example(truth_ids[unknown])})")
            if len(truth) != len(self.hits):
                absent = hit_ids[~np.isin(hit_ids, truth_ids)]
                raise EventError(f"{self._where('truth')}: {len(absent)} hit(s) have no truth row "
                                 f"(hit_id {_example(absent)})")
            if self.particles is not None:
                pids = truth["particle_id"].to_numpy()
                orphan = (pids != 0) & ~np.isin(pids, self.particles["particle_id"].to_numpy())
                if orphan.any():
                    raise EventError(f"{self._where('truth')}: {int(orphan.sum())} truth hit(s) of particles "
                                     f"not in particles (particle_id {_example(np.unique(pids[orphan]))})")
        return self

    @property
    def n_hits(self) -> int:
        return len(self.hits)

    def summary(self) -> dict:
        """What is in the event: counts, the noise fraction, hits per volume (plain Python numbers)."""
        out: dict = {"event_id": self.event_id, "n_hits": self.n_hits,
                     "parts": [p for p in PARTS if getattr(self, p) is not None]}
        if self.particles is not None:
            p = self.particles
            pt = np.hypot(p["px"].to_numpy(np.float64), p["py"].to_numpy(np.float64))
            out["n_particles"] = len(p)
            out["n_particles_with_hits"] = int((p["nhits"] > 0).sum())
            out["n_particles_pt_gt_1"] = int(((p["nhits"] > 0) & (pt > 1.0)).sum())
            out["particle_hits"] = int(p["nhits"].sum())
        if self.truth is not None:
            out["noise_fraction"] = float((self.truth["particle_id"] == 0).mean()) if len(self.truth) else 0.0
        elif self.particles is not None and self.n_hits:
            # Without truth, the hits that no particle claims are the noise (as the TrackML README reads it).
            out["noise_fraction_estimate"] = max(0.0, 1.0 - out["particle_hits"] / self.n_hits)
        counts = self.hits["volume_id"].value_counts().sort_index()
        out["hits_per_volume"] = {int(k): int(v) for k, v in zip(counts.index, counts.to_numpy(), strict=True)}
        return out

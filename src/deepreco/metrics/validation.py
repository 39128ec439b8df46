"""Checks on the tables the metrics read: column presence, integer ids, and the submission's fit to its event.

The helpers here turn table columns into plain numpy arrays once, so that the metrics downstream can work
on arrays without re-checking them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from deepreco.errors import EventError, SubmissionError

__all__ = ["check_submission"]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def require_columns(table, columns: Iterable[str], source: str, error: type[Exception]) -> None:
    """Raise `error` when `table` is not a DataFrame or lacks one of `columns`."""
    if not isinstance(table, pd.DataFrame):
        raise error(f"{source}: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        plural = "s" if len(missing) > 1 else ""
        raise error(f"{source}: missing column{plural} {names}")


def integer_ids(values, name: str, source: str, error: type[Exception],
                allow_nan: bool = False) -> np.ndarray:
    """Return `values` as an int64 array, raising `error` on NaN, non-integer or non-numeric entries.

    With ``allow_nan`` NaN entries are kept: the result is then float64 (integer-valued apart from NaN).
    """
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        raise error(f"{source}: column {name!r} must hold integers, got dtype {dtype}")
    if pd.api.types.is_integer_dtype(dtype):
        if series.hasnans:
            as_float = series.to_numpy(dtype=np.float64, na_value=np.nan)
            return _nan_ids(as_float, name, source, error, allow_nan)
        arr = series.to_numpy()
        if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise error(f"{source}: column {name!r} holds ids above 2**63-1, e.g. {arr.max()}")
        return arr.astype(np.int64, copy=False)
    arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return _nan_ids(arr, name, source, error, allow_nan)


def _nan_ids(arr: np.ndarray, name: str, source: str, error: type[Exception], allow_nan: bool) -> np.ndarray:
    nan = np.isnan(arr)
    if nan.any() and not allow_nan:
        raise error(f"{source}: column {name!r} has {_count(int(nan.sum()), 'NaN value')}")
    finite = arr[~nan]
    bad = ~np.isfinite(finite) | (finite != np.trunc(finite)) | (np.abs(finite) > 2.0**63 - 1)
    if bad.any():
        raise error(
            f"{source}: column {name!r} has {_count(int(bad.sum()), 'non-integer value')}, "
            f"e.g. {finite[bad][0]!r}"
        )
    if nan.any():
        return arr
    return arr.astype(np.int64)


def float_column(table: pd.DataFrame, name: str) -> np.ndarray:
    """Column `name` as a float64 array (NaN for missing values)."""
    return table[name].to_numpy(dtype=np.float64, na_value=np.nan)


class IdIndex:
    """The rows of a table by integer id; raises `error` when an id appears twice.

    Dense ids (spanning at most a few times their count, as TrackML's hit ids 1..n) are looked up in a direct
    table; sparse ones (particle ids) by binary search in the sorted ids.
    """

    def __init__(self, ids: np.ndarray, name: str, source: str, error: type[Exception]):
        self.size = ids.size
        self._table = None
        if ids.size == 0:
            self._sorted = ids
            self._sorter = np.zeros(0, dtype=np.intp)
            return
        self._lo, self._hi = int(ids.min()), int(ids.max())
        span = self._hi - self._lo + 1
        if span <= 4 * ids.size + 1024:
            offset = ids - self._lo
            counts = np.bincount(offset, minlength=span)
            if counts.max() > 1:
                dup = np.flatnonzero(counts > 1)
                raise error(f"{source}: {_count(dup.size, name)} listed more than once, "
                            f"e.g. {name} {dup[0] + self._lo}")
            self._table = np.full(span, -1, dtype=np.intp)
            self._table[offset] = np.arange(ids.size)
            return
        self._sorter = np.argsort(ids, kind="stable")
        self._sorted = ids[self._sorter]
        dup = self._sorted[1:] == self._sorted[:-1]
        if dup.any():
            n_dup = int(np.unique(self._sorted[1:][dup]).size)
            raise error(f"{source}: {_count(n_dup, name)} listed more than once, "
                        f"e.g. {name} {self._sorted[1:][dup][0]}")

    def find(self, ids: np.ndarray):
        """``(rows, found)``: the row of each id (-1 where absent) and a mask of the ids found."""
        if self._table is not None:
            inside = (ids >= self._lo) & (ids <= self._hi)
            rows = np.full(ids.shape, -1, dtype=np.intp)
            rows[inside] = self._table[ids[inside] - self._lo]
            return rows, rows >= 0
        pos, found = locate(self._sorted, ids)
        rows = np.where(found, self._sorter[pos] if self._sorter.size else 0, -1)
        return rows, found


def locate(sorted_ids: np.ndarray, ids: np.ndarray):
    """Positions of `ids` in the sorted array `sorted_ids` and a mask of those found there."""
    if sorted_ids.size == 0:
        return np.zeros(ids.shape, dtype=np.intp), np.zeros(ids.shape, dtype=bool)
    pos = np.searchsorted(sorted_ids, ids)
    np.minimum(pos, sorted_ids.size - 1, out=pos)
    return pos, sorted_ids[pos] == ids


def map_submission(submission, event: IdIndex, source: str, strict: bool = True):
    """Map a submission onto the rows of its event (`event`: an IdIndex of the event's hit ids).

    Returns ``(rows, track_ids)``: for each kept submission row, the event row of its hit and its
    track_id (int64).

    Strict (the default) raises SubmissionError on a missing column, NaN or non-integer ids, negative
    track ids, hit ids not in the event, and hits listed more than once. Not strict, rows whose hit is not
    in the event or whose track_id is NaN are dropped (those hits count as unassigned, as in the TrackML
    reference), but a hit listed twice, or a negative track_id, is still an error.
    """
    require_columns(submission, ("hit_id", "track_id"), source, SubmissionError)
    hits = integer_ids(submission["hit_id"], "hit_id", source, SubmissionError)
    tracks = integer_ids(submission["track_id"], "track_id", source, SubmissionError, allow_nan=not strict)
    rows, found = event.find(hits)
    if strict and not found.all():
        unknown = hits[~found]
        raise SubmissionError(
            f"{source}: {_count(unknown.size, 'hit_id')} not in the event, e.g. hit_id {unknown[0]}"
        )
    negative = tracks < 0  # False for NaN
    if negative.any():
        # the reference loses track -1 (its own "no track yet" marker): refuse negative ids altogether
        raise SubmissionError(
            f"{source}: {_count(int(negative.sum()), 'negative track_id')}, e.g. {tracks[negative][0]:.0f}; "
            "track ids must be >= 0 (leave unassigned hits out)"
        )
    keep = found
    if tracks.dtype.kind == "f":
        keep = keep & ~np.isnan(tracks)
    if not keep.all():
        rows, hits, tracks = rows[keep], hits[keep], tracks[keep]
    tracks = tracks.astype(np.int64, copy=False)
    counts = np.bincount(rows, minlength=event.size)
    if rows.size and counts.max() > 1:
        multi = np.flatnonzero(counts > 1)
        row = multi[0]
        example = hits[rows == row][0]
        in_tracks = ", ".join(str(t) for t in tracks[rows == row])
        raise SubmissionError(
            f"{source}: {_count(multi.size, 'hit')} listed more than once, e.g. hit_id {example} "
            f"(track_ids {in_tracks})"
        )
    return rows, tracks


def check_submission(submission, hit_ids, source: str = "submission") -> None:
    """Check that a submission fits its event; raise SubmissionError naming the first fault found.

    Faults: a missing ``hit_id`` or ``track_id`` column; NaN or non-integer ids; a negative track_id
    (TrackML track ids are >= 0: the reference scorer silently loses track -1); hit ids that are not in
    the event (``hit_ids``: the event's hit ids, array-like, or a DataFrame with a ``hit_id`` column);
    a hit listed more than once (in two tracks, or twice in one). The messages say how many and give one
    example. Hits of the event that the submission leaves out are allowed: they count as unassigned.
    """
    if isinstance(hit_ids, pd.DataFrame):
        require_columns(hit_ids, ("hit_id",), "event", EventError)
        hit_ids = hit_ids["hit_id"]
    event_hits = integer_ids(hit_ids, "hit_id", "event", EventError)
    map_submission(submission, IdIndex(event_hits, "hit_id", "event", EventError), source, strict=True)

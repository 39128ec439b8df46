"""The TrackML event score, computed with sorts and grouped reductions (no loop over hits).

Definitions (those of the challenge's reference library, ``trackml.score.score_event``):

* Each truth hit belongs to the track the submission puts it in. A truth hit the submission leaves out is a
  one-hit track of its own.
* A track's *majority particle* is the particle that contributes most of its hits; on a tie, the smallest
  particle_id wins. Noise (particle 0) can be the majority particle.
* A track is *good* when more than half of its hits come from its majority particle and it holds more than
  half of that particle's hits, counted as truth rows.
* The score is the sum, over good tracks, of the weights of the majority particle's hits in the track,
  divided by the event's total weight.

An event without hits, or whose weights sum to 0, scores 0.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deepreco.errors import EventError

from .validation import IdIndex, float_column, integer_ids, map_submission, require_columns

__all__ = ["analyze_tracks", "score_event"]

_TRACK_COLUMNS = ["track_id", "nhits", "major_particle_id", "major_particle_nhits", "major_nhits",
                  "major_weight"]


@dataclass(frozen=True)
class TrackTable:
    """Per-track summary of an event matched with a submission (arrays aligned on tracks).

    Tracks ``0 .. n_assigned - 1`` are the submission's, in increasing track_id order; the ones after are
    the one-hit tracks of unassigned truth hits, ordered by particle_id.
    """

    track_ids: np.ndarray  # (n_assigned,) the submission's track ids, increasing
    nhits: np.ndarray  # hits in each track
    major: np.ndarray  # index of the majority particle into particle_ids
    major_nhits: np.ndarray  # hits of the majority particle in the track
    major_weight: np.ndarray | None  # summed weight of those hits (not normalised), when asked for
    particle_ids: np.ndarray  # the truth's particle ids, increasing
    particle_nhits: np.ndarray  # truth rows of each particle
    total_weight: float  # sum of the truth weights (0.0 when not asked for)

    @property
    def n_assigned(self) -> int:
        return int(self.track_ids.size)


def _truth_arrays(truth, with_weight: bool):
    columns = ("hit_id", "particle_id", "weight") if with_weight else ("hit_id", "particle_id")
    require_columns(truth, columns, "truth", EventError)
    hits = integer_ids(truth["hit_id"], "hit_id", "truth", EventError)
    particles = integer_ids(truth["particle_id"], "particle_id", "truth", EventError)
    weight = None
    if with_weight:
        weight = float_column(truth, "weight")
        if not np.isfinite(weight).all():
            bad = int((~np.isfinite(weight)).sum())
            raise EventError(f"truth: column 'weight' has {bad} NaN or infinite values")
    return hits, particles, weight


def track_table(truth: pd.DataFrame, submission: pd.DataFrame, with_weight: bool = True,
                validate: bool = True, source: str = "submission") -> TrackTable:
    """Match `submission` with `truth` and summarise each track (see TrackTable).

    With `validate`, the submission must fit the event (check_submission); without it, rows naming hits
    not in the event and rows with a NaN track_id are ignored. A hit listed twice is always an error.
    """
    hits, particles, weight = _truth_arrays(truth, with_weight)
    event = IdIndex(hits, "hit_id", "truth", EventError)
    rows, tracks = map_submission(submission, event, source, strict=validate)
    n = hits.size

    particle_ids, pcode = np.unique(particles, return_inverse=True)
    pcode = pcode.reshape(-1)
    particle_nhits = np.bincount(pcode, minlength=particle_ids.size)
    total_weight = float(weight.sum()) if weight is not None else 0.0

    track_ids, tcode_sub = np.unique(tracks, return_inverse=True)
    n_assigned = track_ids.size
    tcode = np.full(n, -1, dtype=np.int64)
    tcode[rows] = tcode_sub.reshape(-1)
    # unassigned hits: one track each, after the submission's tracks, ordered by particle
    loose = np.flatnonzero(tcode < 0)
    if loose.size:
        loose = loose[np.argsort(pcode[loose], kind="stable")]
        tcode[loose] = n_assigned + np.arange(loose.size)

    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return TrackTable(track_ids, empty, empty, empty, np.zeros(0) if with_weight else None,
                          particle_ids, particle_nhits, total_weight)

    # one group per (track, particle) pair, ordered by track then particle_id
    key = tcode * np.int64(particle_ids.size) + pcode
    order = np.argsort(key, kind="stable")
    skey = key[order]
    starts = np.flatnonzero(np.concatenate(([True], skey[1:] != skey[:-1])))
    gkey = skey[starts]
    gcount = np.diff(np.append(starts, n))
    gtrack = gkey // particle_ids.size
    gpart = gkey % particle_ids.size
    gweight = np.add.reduceat(weight[order], starts) if weight is not None else None

    # every track code 0 .. ntracks-1 has hits, so gtrack is a run-length encoding of them
    tstarts = np.flatnonzero(np.concatenate(([True], gtrack[1:] != gtrack[:-1])))
    nhits = np.add.reduceat(gcount, tstarts)
    most = np.maximum.reduceat(gcount, tstarts)
    # the first group reaching the maximum within each track has the smallest particle_id
    top = np.flatnonzero(gcount == most[gtrack])
    first_top = top[np.concatenate(([True], gtrack[top][1:] != gtrack[top][:-1]))]
    return TrackTable(
        track_ids=track_ids,
        nhits=nhits,
        major=gpart[first_top],
        major_nhits=gcount[first_top],
        major_weight=gweight[first_top] if gweight is not None else None,
        particle_ids=particle_ids,
        particle_nhits=particle_nhits,
        total_weight=total_weight,
    )


def _normalised(table: TrackTable) -> np.ndarray:
    assert table.major_weight is not None, "the track table was made without weights"
    if table.total_weight == 0.0:
        return np.zeros(table.major_weight.size)
    return np.asarray(table.major_weight / table.total_weight)


def analyze_tracks(truth: pd.DataFrame, submission: pd.DataFrame, validate: bool = True) -> pd.DataFrame:
    """One row per track: track_id, nhits, major_particle_id, major_particle_nhits, major_nhits,
    major_weight (the majority hits' weight over the event's total weight; 0 when that total is 0).

    `truth` needs hit_id, particle_id and weight; `submission` hit_id and track_id. Rows come in
    increasing track_id order; truth hits missing from the submission follow, one row each with a NaN
    track_id (the track_id column is then float). See the module docstring for the definitions, and
    `track_table` for `validate`.
    """
    table = track_table(truth, submission, with_weight=True, validate=validate)
    n_loose = table.nhits.size - table.n_assigned
    track_id = table.track_ids
    if n_loose:
        track_id = np.concatenate((track_id.astype(np.float64), np.full(n_loose, np.nan)))
    return pd.DataFrame({
        "track_id": track_id,
        "nhits": table.nhits,
        "major_particle_id": table.particle_ids[table.major],
        "major_particle_nhits": table.particle_nhits[table.major],
        "major_nhits": table.major_nhits,
        "major_weight": _normalised(table),
    }, columns=_TRACK_COLUMNS)


def good_tracks(table: TrackTable) -> np.ndarray:
    """Tracks with more than half their hits from their majority particle and more than half of its hits."""
    twice = 2 * table.major_nhits
    return (twice > table.nhits) & (twice > table.particle_nhits[table.major])


def score_event(truth: pd.DataFrame, submission: pd.DataFrame, validate: bool = True) -> float:
    """TrackML score of one event, between 0 and 1 (see the module docstring).

    `truth` needs hit_id, particle_id and weight (see `hit_weights`); `submission` hit_id and track_id.
    Raises SubmissionError when the submission does not fit the event (see `check_submission`; with
    ``validate=False`` hits not in the event and NaN track_ids are ignored, as the reference does).
    """
    return score_from_table(track_table(truth, submission, with_weight=True, validate=validate))


def score_from_table(table: TrackTable) -> float:
    """The score of a TrackTable built with weights: 0.0 without hits or with a total weight of 0."""
    if table.nhits.size == 0 or table.total_weight == 0.0:
        return 0.0
    return float(_normalised(table)[good_tracks(table)].sum())

"""All the metrics of one event in one call."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .score import score_from_table, track_table
from .tracking import _check_counts, match_particles, summarise
from .weights import add_weights

__all__ = ["evaluate"]


def has_usable_weights(truth: pd.DataFrame) -> bool:
    """Whether `truth` has a ``weight`` column with finite values and a positive sum."""
    if "weight" not in truth.columns:
        return False
    try:
        weight = truth["weight"].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(weight).all() and weight.sum() > 0)


def evaluate(truth: pd.DataFrame, particles: pd.DataFrame, submission: pd.DataFrame,
             pt_min: float = 1.0, min_hits: int = 4, min_track_hits: int = 4, validate: bool = True) -> dict:
    """``{"score": score_event(...), **tracking_metrics(...)}`` for one event.

    When `truth` has no usable ``weight`` column (absent, NaN or infinite values, or summing to 0) the
    weights are computed from `particles` with `hit_weights`. The submission is matched with the truth
    once and the result shared between the score and the tracking metrics.
    """
    _check_counts(min_hits, min_track_hits)
    if isinstance(truth, pd.DataFrame) and not has_usable_weights(truth):
        truth = add_weights(truth, particles)
    table = track_table(truth, submission, with_weight=True, validate=validate)
    match = match_particles(truth, particles, submission, min_track_hits=min_track_hits, table=table)
    return {"score": score_from_table(table), **summarise(match, pt_min, min_hits)}

"""The two accuracies HEP.TrkX reports for seeded single-track finding, defined as its code defines them.

Every method (network or baseline) gives ``scores`` of shape (N, L, P): a score for each of the P pixels of
each of the L planes of N events, higher meaning "more likely the signal track's pixel". Only the order of a
plane's scores matters, so softmax probabilities, logits and negative chi-squares all work.

* **pixel accuracy**: on each plane after the seed planes, the highest-scored pixel is the signal track's
  pixel; the fraction of (event, plane) pairs where it is (HEP.TrkX ``calc_hit_accuracy(preds, targets,
  num_seed_layers)``, logged as "Accuracy of predicted pixel").
* **hit accuracy**: the same, with the choice restricted to the pixels that have a hit: on each plane the
  highest-scored *hit* is the signal hit. HEP.TrkX computes it as ``calc_hit_accuracy(preds * events,
  targets)``, over *all* planes, seed planes included (logged as "Accuracy of classified hit"); that is the
  default here, and ``n_seed`` counts only the planes after the seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepreco.errors import DeepRecoError

__all__ = ["accuracy_by_plane", "hit_accuracy", "pixel_accuracy", "picked_hits", "top_pixels"]


def _flat(arr: np.ndarray) -> np.ndarray:
    return arr.reshape(arr.shape[0], arr.shape[1], -1)


def _check(scores: np.ndarray, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, signal = _flat(np.asarray(scores)), _flat(np.asarray(signal))
    if scores.shape != signal.shape:
        raise DeepRecoError(f"scores of shape {scores.shape} do not match the targets' {signal.shape}")
    return scores, signal


def top_pixels(scores: np.ndarray, events: np.ndarray | None = None) -> np.ndarray:
    """(N, L) flat index of each plane's highest-scored pixel, or highest-scored hit when ``events`` is given."""
    scores = _flat(np.asarray(scores, dtype=np.float64))
    if events is not None:
        # -inf, not HEP.TrkX's product with the hit map: it keeps negative scores (chi-squares) in order
        scores = np.where(_flat(np.asarray(events)) > 0, scores, -np.inf)
    return scores.argmax(axis=2)


def accuracy_by_plane(scores: np.ndarray, signal: np.ndarray, events: np.ndarray | None = None) -> np.ndarray:
    """(N, L) booleans: the plane's top pixel (top hit when ``events`` is given) is the signal's."""
    scores, signal = _check(scores, signal)
    top = top_pixels(scores, events)
    return np.take_along_axis(signal, top[..., None], axis=2)[..., 0] > 0


def pixel_accuracy(scores: np.ndarray, signal: np.ndarray, n_seed: int = 3) -> float:
    """Fraction of planes after the ``n_seed`` seed planes whose highest-scored pixel is the signal's pixel."""
    return float(accuracy_by_plane(scores, signal)[:, n_seed:].mean())


def hit_accuracy(scores: np.ndarray, signal: np.ndarray, events: np.ndarray, n_seed: int = 0) -> float:
    """Fraction of planes (after ``n_seed``; HEP.TrkX: all) whose highest-scored hit is the signal's hit."""
    if _flat(np.asarray(events)).shape != _flat(np.asarray(signal)).shape:
        raise DeepRecoError("the hit map does not have the targets' shape")
    return float(accuracy_by_plane(scores, signal, events)[:, n_seed:].mean())


def picked_hits(data, scores: np.ndarray) -> pd.DataFrame:
    """The method's answer as the toy's hit list: ``(event, hit_id, track_id)`` with track_id 1 for the hit each
    plane's scores rank first (the method's signal track) and 0 for the others, as reconstruction methods
    return their tracks elsewhere in deepreco."""
    hits = data.hits()
    top = top_pixels(scores, data.events)
    flat = np.ravel_multi_index(tuple(hits[c].to_numpy() for c in "xy" if c in hits), data.plane_shape)
    chosen = top[hits["event"].to_numpy(), hits["layer"].to_numpy()] == flat
    return pd.DataFrame({"event": hits["event"], "hit_id": hits["hit_id"], "track_id": chosen.astype(np.int64)})

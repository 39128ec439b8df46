"""Metrics of track reconstruction: the TrackML score and its weights, efficiency, fake and duplicate rates.

The score and the weights give the values of the challenge's reference library (``trackml.score`` and
``trackml.weights``, phase 1), with vectorised code that runs on pandas 2 and 3.

>>> import pandas as pd
>>> from deepreco.metrics import score_event
>>> truth = pd.DataFrame({"hit_id": [1, 2, 3, 4], "particle_id": [7, 7, 7, 7], "weight": [0.25] * 4})
>>> score_event(truth, pd.DataFrame({"hit_id": [1, 2, 3, 4], "track_id": [1, 1, 1, 1]}))
1.0
>>> score_event(truth, pd.DataFrame({"hit_id": [1, 2, 3, 4], "track_id": [1, 1, 1, 2]}))  # 3 of 4 hits
0.75
>>> score_event(truth, pd.DataFrame({"hit_id": [1, 2, 3, 4], "track_id": [1, 1, 2, 2]}))  # no majority
0.0
"""

from .efficiency import default_bins, efficiency_table
from .evaluate import evaluate
from .plots import plot_efficiencies, plot_efficiency
from .score import analyze_tracks, score_event
from .tracking import MATCHINGS, tracking_metrics
from .validation import check_submission
from .weights import add_weights, hit_weights, order_weight_matrix, weight_pt

__all__ = [
    "MATCHINGS",
    "add_weights",
    "analyze_tracks",
    "check_submission",
    "default_bins",
    "efficiency_table",
    "evaluate",
    "hit_weights",
    "order_weight_matrix",
    "plot_efficiencies",
    "plot_efficiency",
    "score_event",
    "tracking_metrics",
    "weight_pt",
]

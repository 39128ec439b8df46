"""Classical baselines on the same toy events and judged by the same accuracies as the networks.

Each is a function ``events (N, L, *plane), n_seed -> scores (N, L, P)``: a score for every pixel of every
plane, higher for "the signal track's pixel", with the hits the method picks scored above every other pixel.
"""

from .hough import hough_scores
from .kalman import kalman_scores

__all__ = ["hough_scores", "kalman_scores"]

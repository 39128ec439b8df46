"""HEP.TrkX's toy tracking studies (seed 001): toy detectors, the per-pixel models, the classical baselines,
the end-to-end track-parameter model and the benchmark that compares them.

The flow: ``detector`` makes events, ``models`` score every pixel of every plane for "belongs to the signal
track", ``training`` fits them, ``baselines`` do the same job with a Hough transform and a Kalman filter,
``accuracy`` judges all of them alike, ``benchmark`` runs the lot and ``plots`` draws it.
"""

from .accuracy import hit_accuracy, picked_hits, pixel_accuracy
from .detector import ToyData, TrackImages, generate_2d, generate_3d, generate_toy, generate_track_images

__all__ = ["ToyData", "TrackImages", "generate_2d", "generate_3d", "generate_toy", "generate_track_images",
           "hit_accuracy", "picked_hits", "pixel_accuracy"]

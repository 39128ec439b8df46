"""HEP.TrkX's toy tracking studies (seed 001): toy detectors, the per-pixel models, the classical baselines,
the end-to-end track-parameter model and the benchmark that compares them.

The flow: ``detector`` makes events, ``models`` score every pixel of every plane for "belongs to the signal
track", ``training`` fits them, ``baselines`` do the same job with a Hough transform and a Kalman filter,
``accuracy`` judges all of them alike, ``benchmark`` runs the lot and ``plots`` draws it.
"""

from importlib import import_module

# Imported on first use, so that `deepreco toys --help` does not load torch.
_NAMES = {"hit_accuracy": "accuracy", "picked_hits": "accuracy", "pixel_accuracy": "accuracy",
          **{n: "detector" for n in ("ToyData", "TrackImages", "generate_2d", "generate_3d", "generate_toy",
                                     "generate_track_images")}}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_NAMES[name]}", __name__), name)

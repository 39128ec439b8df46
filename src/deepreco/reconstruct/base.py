"""The interface every reconstruction method has, and the registry that finds methods by name."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..event import Event
from ..registry import TRACKING, get_params

METHODS = TRACKING  # the names are listed in deepreco.registry; each module registers its method


class Method:
    """A reconstruction method: an event in, a table (hit_id, track_id) out.

    Subclasses set ``name`` and implement `_reconstruct`; the public `reconstruct` checks what comes back
    (every hit_id from the event, each at most once, track ids >= 0) so that every method keeps the contract.
    """

    name: str = ""
    # True for a method that knows only the TrackML detector's modules: it refuses an event with hits elsewhere
    # (which it would otherwise drop in silence, writing an empty submission)
    trackml_modules: bool = False

    def reconstruct(self, event: Event) -> pd.DataFrame:
        if event.n_hits == 0:
            return pd.DataFrame({"hit_id": np.zeros(0, np.int64), "track_id": np.zeros(0, np.int64)})
        if self.trackml_modules:
            check_modules(event, self.name)
        tracks = self._reconstruct(event)
        return _checked(tracks, event, self.name)

    def _reconstruct(self, event: Event) -> pd.DataFrame:
        raise NotImplementedError

    def get_params(self) -> dict:
        """The parameters this method was built with (its ``__init__`` arguments)."""
        return get_params(self)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def check_modules(event: Event, method: str) -> None:
    """`EventError` (one line naming the event's hits file) when a hit's (volume_id, layer_id, module_id) is not a
    module of the TrackML detector: events of another detector, or ids garbled on the way."""
    from ..errors import EventError
    from .ckf.geometry import detector

    try:
        detector().module_index(*(event.hits[c].to_numpy() for c in ("volume_id", "layer_id", "module_id")))
    except EventError as exc:
        where = event.sources.get("hits", f"event {event.event_id}")
        found = str(exc).removeprefix("module_index: ").replace(f"of {detector().source}", "of that detector")
        raise EventError(f"{where}: method {method} reads events of the TrackML detector only, and {found}") \
            from None


def _checked(tracks: pd.DataFrame, event: Event, name: str) -> pd.DataFrame:
    hit_ids = tracks["hit_id"].to_numpy(np.int64)
    track_ids = tracks["track_id"].to_numpy(np.int64)
    if len(np.unique(hit_ids)) != len(hit_ids):
        raise RuntimeError(f"method {name} put a hit in more than one track")
    if not np.isin(hit_ids, event.hits["hit_id"].to_numpy()).all():
        raise RuntimeError(f"method {name} returned hits that are not in the event")
    if len(track_ids) and track_ids.min() < 0:
        raise RuntimeError(f"method {name} returned negative track ids")
    return pd.DataFrame({"hit_id": hit_ids, "track_id": track_ids})


def register(name: str):
    """Class decorator: make a track-finding method findable by ``name``."""
    return METHODS.register(name)


def available_methods() -> list[str]:
    return METHODS.names()


def get_method(name: str, **params) -> Method:
    """The method registered as ``name``, built with ``params``."""
    return METHODS.get(name, **params)


def reconstruct(event: Event, method: str | Method = "truth", **params) -> pd.DataFrame:
    """Reconstruct one event with a method given by name (built with ``params``) or as an object."""
    if isinstance(method, str):
        method = get_method(method, **params)
    return method.reconstruct(event)

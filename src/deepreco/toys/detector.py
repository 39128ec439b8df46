"""HEP.TrkX's toy detectors: straight tracks through planes of binary pixels.

A detector is ``n_layers`` planes; a plane is a line of ``width`` pixels (2D toy) or a square of
``size x size`` pixels (3D toy). A track enters the first plane at a uniform point and leaves the last plane at
another uniform point; in between it is the straight line joining them, so it crosses every plane, and its hit
on plane ``t`` is the pixel holding ``entry + slope * t`` (``slope = (exit - entry) / (n_layers - 1)``, in
pixels per plane; pixel ``i`` covers ``[i, i + 1)``, its centre is ``i + 0.5``).

An event holds one *signal* track, a number of *background* tracks (Poisson with mean ``mean_background``, or
a fixed number) and uniform *noise* (each pixel fires with probability ``noise_prob``). The first ``n_seed``
planes are the *seed layers*: they hold the signal track's hits only (no background, no noise), as in
HEP.TrkX's ``toy3d.py``, so that a model knows which track to follow. Pixels are binary: two tracks through one
pixel make one hit.

Two views of the same events: the pixel image (``ToyData.events``, planes as arrays, with the signal track's
pixels in ``ToyData.signal`` as the training target) and the hit list (``ToyData.hits()``, one row a hit with
its track).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deepreco.errors import DeepRecoError

__all__ = ["ToyData", "TrackImages", "generate_2d", "generate_3d", "generate_toy", "generate_track_images",
           "line_pixels"]

NOISE, SIGNAL = 0, 1  # track_id of noise hits and of the signal track; background tracks are 2, 3, ...


@dataclass
class ToyData:
    """A batch of toy events in both views.

    ``events``: (N, L, *plane) uint8, 1 where a pixel has a hit. ``signal``: same shape, 1 on the signal
    track's pixels (exactly one a plane); uint8 keeps 10k 3D events at 100 MB an array, models take float.
    ``labels``: same shape, int16, the track_id of each hit pixel
    (0 noise or empty, 1 signal, 2.. background; where tracks share a pixel, the signal, then the lowest id,
    wins). ``tracks``: one row a track (event, track_id, slope_*, entry_*). ``n_background``: (N,) the number of
    background tracks an event was made with.
    """

    events: np.ndarray
    signal: np.ndarray
    labels: np.ndarray
    tracks: pd.DataFrame
    n_background: np.ndarray
    n_seed: int

    @property
    def n_events(self) -> int:
        return self.events.shape[0]

    @property
    def n_layers(self) -> int:
        return self.events.shape[1]

    @property
    def plane_shape(self) -> tuple[int, ...]:
        return tuple(self.events.shape[2:])

    def flat(self, which: str = "events") -> np.ndarray:
        """``events``, ``signal`` or ``labels`` with each plane flattened: (N, L, P)."""
        arr = getattr(self, which)
        return arr.reshape(arr.shape[0], arr.shape[1], -1)

    def signal_index(self) -> np.ndarray:
        """(N, L) flat index of the signal track's pixel on each plane: the class a plane's softmax must pick."""
        return self.flat("signal").argmax(axis=2)

    def subset(self, index) -> ToyData:
        """The events ``index`` picks (a slice, an integer array or a boolean mask), renumbered from 0."""
        ids = np.arange(self.n_events)[index]
        tracks = self.tracks[self.tracks["event"].isin(ids)].copy()
        tracks["event"] = np.searchsorted(ids, tracks["event"].to_numpy())
        return ToyData(self.events[ids], self.signal[ids], self.labels[ids], tracks.reset_index(drop=True),
                       self.n_background[ids], self.n_seed)

    def hits(self) -> pd.DataFrame:
        """The hit-list view: one row a hit (event, hit_id, layer, x[, y], track_id), hit_id from 1 per event.

        ``x``/``y`` are the pixel indices; ``track_id`` is 0 for noise, 1 for the signal track, 2.. for the
        background tracks (as in ``tracks``).
        """
        idx = np.nonzero(self.events > 0)
        labels = self.labels[idx]
        cols = {"event": idx[0], "layer": idx[1]}
        for name, coord in zip("xy", idx[2:], strict=False):
            cols[name] = coord
        cols["track_id"] = labels.astype(np.int64)
        table = pd.DataFrame(cols)
        # np.nonzero walks in C order, so hits come grouped by event and the running count restarts per event
        starts = np.searchsorted(idx[0], np.arange(self.n_events))
        table.insert(1, "hit_id", np.arange(len(table)) - starts[idx[0]] + 1)
        return table


def line_pixels(entry: np.ndarray, slope: np.ndarray, n_layers: int, size: int) -> np.ndarray:
    """Pixel indices (T, L, d) of T straight tracks: ``floor(entry + slope * t)`` on planes t = 0 .. L-1."""
    t = np.arange(n_layers, dtype=np.float64)
    pos = entry[:, None, :] + slope[:, None, :] * t[None, :, None]
    # entry and exit lie in [0, size), so every crossing does too; the clip only guards float round-off
    return np.clip(np.floor(pos), 0, size - 1).astype(np.int64)


def _sample_lines(rng: np.random.Generator, n: int, n_layers: int, size: int, dim: int):
    entry = rng.uniform(0, size, size=(n, dim))
    exit_ = rng.uniform(0, size, size=(n, dim))
    return entry, (exit_ - entry) / (n_layers - 1)


def _check(n_events: int, n_layers: int, size: int, n_seed: int, noise_prob: float, mean_background: float,
           n_background: int | None) -> None:
    if n_events < 1:
        raise DeepRecoError(f"n_events must be at least 1, got {n_events}")
    if n_layers < 2 or size < 1:
        raise DeepRecoError(f"a toy detector needs at least 2 layers and 1 pixel, got {n_layers} x {size}")
    if not 0 <= n_seed < n_layers:
        raise DeepRecoError(f"n_seed must be in [0, {n_layers - 1}], got {n_seed}")
    if not 0.0 <= noise_prob <= 1.0:
        raise DeepRecoError(f"noise_prob must be in [0, 1], got {noise_prob}")
    if mean_background < 0 or (n_background is not None and n_background < 0):
        raise DeepRecoError("the number of background tracks cannot be negative")


def generate_toy(n_events: int, n_layers: int, size: int, dim: int, *, n_seed: int = 3,
                 mean_background: float = 3.0, n_background: int | None = None, noise_prob: float = 0.01,
                 seed: int | np.random.Generator | None = 0) -> ToyData:
    """Events of a toy detector whose planes have ``dim`` (1 or 2) axes of ``size`` pixels.

    ``n_background`` fixes the number of background tracks of every event; when it is None each event draws
    it from Poisson(``mean_background``). Reproducible: the same ``seed`` gives the same events.
    """
    _check(n_events, n_layers, size, n_seed, noise_prob, mean_background, n_background)
    rng = np.random.default_rng(seed)
    n_bkg = (rng.poisson(mean_background, n_events) if n_background is None
             else np.full(n_events, n_background)).astype(np.int64)
    # all tracks of all events in one array: each event's signal first, then its background tracks
    per_event = 1 + n_bkg
    event_of = np.repeat(np.arange(n_events), per_event)
    first = np.cumsum(per_event) - per_event
    track_id = np.arange(per_event.sum()) - first[event_of] + 1
    entry, slope = _sample_lines(rng, len(event_of), n_layers, size, dim)
    pix = line_pixels(entry, slope, n_layers, size)

    plane = (size,) * dim
    n_pixels = size**dim
    layer = np.broadcast_to(np.arange(n_layers), pix.shape[:2])
    ev = np.broadcast_to(event_of[:, None], pix.shape[:2])
    tid = np.broadcast_to(track_id[:, None], pix.shape[:2])
    keep = (tid == SIGNAL) | (layer >= n_seed)  # background stays out of the seed layers
    flat = np.ravel_multi_index((ev[keep], layer[keep], *(pix[..., a][keep] for a in range(dim))),
                                (n_events, n_layers, *plane))
    tid = tid[keep]
    # where tracks share a pixel the lowest id (the signal first) keeps it: sort by pixel, then id, keep the first
    order = np.lexsort((tid, flat))
    flat, tid = flat[order], tid[order]
    first_of_pixel = np.ones(len(flat), dtype=bool)
    first_of_pixel[1:] = flat[1:] != flat[:-1]
    flat, tid = flat[first_of_pixel], tid[first_of_pixel]
    # the arrays are written where the hits are, not pixel by pixel (np.zeros costs nothing until touched)
    labels = np.zeros((n_events, n_layers, *plane), dtype=np.int16)
    labels.reshape(-1)[flat] = tid
    events = np.zeros(labels.shape, dtype=np.uint8)
    events.reshape(-1)[flat] = 1
    signal = np.zeros(labels.shape, dtype=np.uint8)
    signal.reshape(-1)[flat[tid == SIGNAL]] = 1
    # noise: each pixel after the seed layers fires with probability noise_prob, independently. Drawn as its
    # count, Binomial(M, p) over the M such pixels, then that many distinct pixels uniformly: the same law as
    # one Bernoulli draw a pixel, at the cost of the noise hits instead of the M pixels
    n_free = n_events * (n_layers - n_seed) * n_pixels
    n_noise = rng.binomial(n_free, noise_prob) if noise_prob < 1 else n_free
    where = rng.choice(n_free, size=n_noise, replace=False)
    e, rest = np.divmod(where, (n_layers - n_seed) * n_pixels)
    events.reshape(-1)[(e * n_layers + n_seed) * n_pixels + rest] = 1

    names = ["x", "y"][:dim]
    tracks = pd.DataFrame({"event": event_of, "track_id": track_id})
    for a, name in enumerate(names):
        tracks[f"slope_{name}"] = slope[:, a]
    for a, name in enumerate(names):
        tracks[f"entry_{name}"] = entry[:, a]
    return ToyData(events, signal, labels, tracks, n_bkg, n_seed)


def generate_3d(n_events: int, *, n_layers: int = 10, size: int = 32, n_seed: int = 3,
                mean_background: float = 3.0, n_background: int | None = None, noise_prob: float = 0.01,
                seed: int | np.random.Generator | None = 0) -> ToyData:
    """HEP.TrkX's 3D toy: 10 planes of 32 x 32 pixels, Poisson(3) background tracks, noise 0.01, 3 seed planes."""
    return generate_toy(n_events, n_layers, size, 2, n_seed=n_seed, mean_background=mean_background,
                        n_background=n_background, noise_prob=noise_prob, seed=seed)


def generate_2d(n_events: int, *, n_layers: int = 50, width: int = 50, n_seed: int = 3,
                mean_background: float = 3.0, n_background: int | None = None, noise_prob: float = 0.01,
                seed: int | np.random.Generator | None = 0) -> ToyData:
    """HEP.TrkX's 2D toy: 50 layers of 50 pixels, straight tracks from a random entry to a random exit."""
    return generate_toy(n_events, n_layers, width, 1, n_seed=n_seed, mean_background=mean_background,
                        n_background=n_background, noise_prob=noise_prob, seed=seed)


@dataclass
class TrackImages:
    """2D toy images with several tracks and no signal, for track-parameter regression.

    ``images``: (N, L, W) float32. ``params``: (N, max_tracks, 2) the tracks' (slope, intercept) in the units
    the regression learns, ``intercept = entry / W`` and ``slope = (exit - entry) / W`` (both about [-1, 1]),
    sorted by intercept and zero past ``n_tracks``. ``n_tracks``: (N,).
    """

    images: np.ndarray
    params: np.ndarray
    n_tracks: np.ndarray

    def mask(self) -> np.ndarray:
        """(N, max_tracks) True on the slots that hold a track."""
        return np.arange(self.params.shape[1])[None, :] < self.n_tracks[:, None]


def generate_track_images(n_events: int, *, n_layers: int = 32, width: int = 32, mean_tracks: float = 3.0,
                          max_tracks: int = 6, noise_prob: float = 0.0,
                          seed: int | np.random.Generator | None = 0) -> TrackImages:
    """Images for the end-to-end model: Poisson(``mean_tracks``) tracks, at least 1 and at most ``max_tracks``."""
    _check(n_events, n_layers, width, 0, noise_prob, mean_tracks, None)
    if max_tracks < 1:
        raise DeepRecoError(f"max_tracks must be at least 1, got {max_tracks}")
    rng = np.random.default_rng(seed)
    n_trk = np.clip(rng.poisson(mean_tracks, n_events), 1, max_tracks)
    event_of = np.repeat(np.arange(n_events), n_trk)
    entry, slope = _sample_lines(rng, len(event_of), n_layers, width, 1)
    pix = line_pixels(entry, slope, n_layers, width)[..., 0]
    images = np.zeros((n_events, n_layers, width), dtype=np.float32)
    images[event_of[:, None], np.arange(n_layers)[None, :], pix] = 1.0
    images[rng.random(images.shape) < noise_prob] = 1.0

    intercept = entry[:, 0] / width
    slope_n = slope[:, 0] * (n_layers - 1) / width
    order = np.lexsort((intercept, event_of))  # by event, then by intercept
    first = np.cumsum(n_trk) - n_trk
    slot = np.arange(len(event_of)) - first[event_of[order]]
    params = np.zeros((n_events, max_tracks, 2), dtype=np.float32)
    params[event_of[order], slot, 0] = slope_n[order]
    params[event_of[order], slot, 1] = intercept[order]
    return TrackImages(images, params, n_trk)

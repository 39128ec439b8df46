"""Event displays: the transverse (x-y) and longitudinal (r-z) views of an event's hits.

Hits are coloured by the particle that made them (truth), by the track a reconstruction put them in, or,
when there is neither, by detector volume. Noise and unassigned hits are drawn in light grey underneath.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SubmissionError
from .event import Event


def _colours(labels: np.ndarray) -> np.ndarray:
    """A distinct, stable colour per label: the golden-ratio sequence spreads neighbouring ids apart."""
    import matplotlib

    _, inverse = np.unique(labels, return_inverse=True)
    hue = (inverse * 0.6180339887498949) % 1.0
    return matplotlib.colormaps["hsv"](hue)


def hit_labels(event: Event, tracks: pd.DataFrame | None = None, colour_by: str = "auto") -> tuple[np.ndarray, str]:
    """One label per hit (0 = noise or unassigned) and what the labels are: track, particle or volume."""
    if colour_by == "auto":
        colour_by = "track" if tracks is not None else "particle" if event.truth is not None else "volume"
    hit_ids = event.hits["hit_id"].to_numpy()
    if colour_by == "track":
        if tracks is None:
            raise SubmissionError("colouring by track needs a submission of tracks")
        labels = pd.Series(tracks["track_id"].to_numpy() + 1, index=tracks["hit_id"].to_numpy())
        return labels.reindex(hit_ids).fillna(0).to_numpy(np.int64), "track"
    if colour_by == "particle":
        if event.truth is None:
            raise SubmissionError("colouring by particle needs the event's truth")
        labels = pd.Series(event.truth["particle_id"].to_numpy(), index=event.truth["hit_id"].to_numpy())
        return labels.reindex(hit_ids).fillna(0).to_numpy(np.int64), "particle"
    if colour_by == "volume":
        return event.hits["volume_id"].to_numpy(np.int64), "volume"
    raise ValueError(f"unknown colour_by {colour_by!r}; expected auto, track, particle or volume")


def draw_event(event: Event, tracks: pd.DataFrame | None = None, colour_by: str = "auto", axes=None,
               title: str | None = None, max_tracks: int = 150):
    """Draw the x-y and r-z views on two matplotlib axes (made when not given); returns the figure.

    Thousands of coloured tracks are unreadable: beyond ``max_tracks``, only the ``max_tracks`` tracks (or
    particles) with the most hits are coloured and joined, the rest are drawn grey with the noise.
    """
    from matplotlib.figure import Figure

    if axes is None:
        # A bare Figure, not pyplot: no global state, no GUI backend, nothing to close.
        axes = Figure(figsize=(14, 6.5)).subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    fig = axes[0].figure
    labels, kind = hit_labels(event, tracks, colour_by)
    x = event.hits["x"].to_numpy()
    y = event.hits["y"].to_numpy()
    z = event.hits["z"].to_numpy()
    r = np.hypot(x, y)
    background = labels == 0 if kind != "volume" else np.zeros(len(labels), bool)
    groups, counts = np.unique(labels[~background], return_counts=True)
    n_groups = len(groups)
    if kind != "volume" and n_groups > max_tracks:
        shown = groups[np.lexsort((groups, -counts))[:max_tracks]]
        background |= ~np.isin(labels, shown)
    fg = ~background
    n_fg = int(fg.sum())
    size_bg = 0.3 if len(labels) > 20000 else 2.0
    size_fg = 0.3 if n_fg > 20000 else 2.0 if n_fg > 2000 else 8.0
    # With few tracks, join each one's hits in order of distance from the origin: the eye follows lines.
    lines = kind != "volume"
    if lines:
        order = np.lexsort((np.sqrt(r**2 + z**2)[fg], labels[fg]))
        idx = np.flatnonzero(fg)[order]
        breaks = np.flatnonzero(np.diff(labels[idx]) != 0) + 1
    for ax, (u, v, ulab, vlab) in zip(axes, [(x, y, "x [mm]", "y [mm]"), (z, r, "z [mm]", "r [mm]")], strict=True):
        ax.scatter(u[background], v[background], s=size_bg, c="0.8", linewidths=0, rasterized=True)
        if lines:  # each track's line in its own colour, as its hits
            from matplotlib.collections import LineCollection

            pieces = np.split(np.stack([u[idx], v[idx]], axis=1).astype(float), breaks)
            firsts = labels[idx][np.concatenate([[0], breaks])] if len(idx) else labels[:0]
            ax.add_collection(LineCollection(pieces, colors=_colours(firsts), linewidths=0.6, zorder=1))
        ax.scatter(u[fg], v[fg], s=size_fg, c=_colours(labels[fg]), linewidths=0, rasterized=True, zorder=2)
        ax.set_xlabel(ulab)
        ax.set_ylabel(vlab)
    axes[0].set_aspect("equal")
    if kind == "volume":
        from matplotlib.lines import Line2D

        vols = np.unique(labels)
        handles = [Line2D([], [], ls="", marker="o", color=c) for c in _colours(vols)]
        axes[1].legend(handles, [f"volume {v}" for v in vols], fontsize="small", loc="upper right",
                       ncols=3, framealpha=0.9)
    what = {"track": "tracks", "particle": "particles", "volume": "volumes"}[kind]
    grey = {"track": ", grey: unassigned", "particle": ", grey: noise", "volume": ""}[kind]
    name = f"event {event.event_id}" if event.event_id is not None else "event"
    if kind != "volume" and n_groups > max_tracks:
        grey += f"; the {max_tracks} with the most hits coloured"
    default = f"{name}: {len(labels):,} hits, coloured by {kind} ({n_groups:,} {what}{grey})"
    fig.suptitle(f"{title}\n{default}" if title else default)
    fig.tight_layout()
    return fig


def tracks_title(event: Event, tracks: pd.DataFrame, name: str) -> str:
    """What a display of ``tracks`` (called ``name``: a method, a file) says of them: their TrackML score and
    efficiency when the event has its truth."""
    if event.truth is None or event.particles is None:
        return f"tracks of {name}"
    from .metrics import evaluate

    r = evaluate(event.truth, event.particles, tracks)
    return (f"tracks of {name}: TrackML score {r['score']:.3f}, efficiency (pT > 1 GeV) {r['efficiency']:.3f}, "
            f"fake rate {r['fake_rate']:.3f}")


def save_display(event: Event, path, tracks: pd.DataFrame | None = None, colour_by: str = "auto",
                 dpi: int = 110, title: str | None = None) -> Path:
    """Write the event display to ``path`` (PNG, PDF, SVG by extension); complete or absent. ``title``
    goes above the default one (event, hits, what the colours are)."""
    path = Path(path)
    fig = draw_event(event, tracks, colour_by, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)  # the command line checked that it may be made
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

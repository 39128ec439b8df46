"""The seed's pictures: an event with each model's per-plane predictions, accuracy against the number of
background tracks, and predicted tracks with their uncertainty bands."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .detector import ToyData

__all__ = ["plot_accuracy_vs_background", "plot_event_predictions", "plot_track_params"]


def _pyplot():
    import matplotlib

    if not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")  # files only: no display is needed, or wanted, on a server
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_vs_background(curves: dict, path: str | Path) -> None:
    """Pixel and hit accuracy of every method against the number of background tracks (two panels)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for name, curve in curves.items():
        style = "--" if name in ("hough", "kalman") else "-"
        for ax, key in zip(axes, ("pixel_accuracy", "hit_accuracy"), strict=True):
            ax.plot(curve["n_background"], curve[key], style, marker="o", ms=3, label=name)
    for ax, title in zip(axes, ("pixel accuracy", "hit accuracy"), strict=True):
        ax.set_xlabel("background tracks")
        ax.set_ylabel(title)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="lower left")
    fig.suptitle("3D toy (10 x 32 x 32, noise 0.01): accuracy against track multiplicity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_event_predictions(event: ToyData, scores: dict, path: str | Path, index: int = 0) -> None:
    """One 3D event, plane by plane: hits (signal in red) on the top row, each method's scores below."""
    plt = _pyplot()
    n_layers = event.n_layers
    size = event.plane_shape
    rows = 1 + len(scores)
    fig, axes = plt.subplots(rows, n_layers, figsize=(1.5 * n_layers, 1.55 * rows), squeeze=False)
    hits = event.events[index].astype(float)
    sig = event.signal[index].astype(float)
    for t in range(n_layers):
        ax = axes[0, t]
        ax.imshow(hits[t] * 0.4 + sig[t] * 0.6, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ys, xs = np.nonzero(sig[t])
        ax.scatter(xs, ys, s=12, facecolors="none", edgecolors="red", linewidths=0.8)
        ax.set_title(f"plane {t}" + (" (seed)" if t < event.n_seed else ""), fontsize=7)
        for r, (name, sc) in enumerate(scores.items(), start=1):
            plane = np.asarray(sc)[index, t].reshape(size).astype(float)
            # rank-normalise: softmax probabilities and negative chi-squares then share one colour scale
            plane = (plane - plane.min()) / max(float(np.ptp(plane)), 1e-12)
            axes[r, t].imshow(plane, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            axes[r, t].scatter(xs, ys, s=12, facecolors="none", edgecolors="red", linewidths=0.8)
            if t == 0:
                axes[r, t].set_ylabel(name, fontsize=7)
    axes[0, 0].set_ylabel("hits", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_track_params(images: np.ndarray, truth: np.ndarray, n_tracks: np.ndarray, params: np.ndarray,
                      cov: np.ndarray, path: str | Path) -> None:
    """2D toy images with the true tracks (dashed) and the predicted ones with their 1-sigma bands."""
    plt = _pyplot()
    n = len(images)
    n_layers, width = images.shape[1:]
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.9), squeeze=False)
    u = np.linspace(0, 1, 50)  # position along the detector: layer / (L - 1)
    for i, ax in enumerate(axes[0]):
        ax.imshow(images[i].T, cmap="Greys", origin="lower", aspect="auto",
                  extent=(-0.5, n_layers - 0.5, 0, width))
        layer = u * (n_layers - 1)
        for k in range(int(n_tracks[i])):
            s_true, c_true = truth[i, k]
            ax.plot(layer, width * (c_true + s_true * u), "--", color="tab:blue", lw=1)
            s, c = params[i, k]
            # x(u) = W (c + s u):  var x = W^2 (var_c + u^2 var_s + 2 u cov_sc)
            var = width**2 * (cov[i, k, 1, 1] + u**2 * cov[i, k, 0, 0] + 2 * u * cov[i, k, 0, 1])
            mid = width * (c + s * u)
            sd = np.sqrt(np.clip(var, 0, None))
            ax.plot(layer, mid, color="tab:red", lw=1)
            ax.fill_between(layer, mid - sd, mid + sd, color="tab:red", alpha=0.3, lw=0)
        ax.set_xlim(-0.5, n_layers - 0.5)
        ax.set_ylim(0, width)
        ax.set_xlabel("layer")
        ax.set_title(f"{int(n_tracks[i])} tracks", fontsize=8)
    axes[0, 0].set_ylabel("pixel")
    fig.suptitle("Conv+LSTM track parameters: true (dashed), predicted with 1-sigma band (red)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

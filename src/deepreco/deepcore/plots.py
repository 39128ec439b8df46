"""The plots of seed 000: efficiency against the distance to the jet axis and against jet pT, the eta residual
and the predicted-against-true eta of DeepCore's seeds, and an event display of one direction's four windows.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first, for machines without a display
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..plotstyle import hep_style  # noqa: E402
from .windows import HALF, WINDOW, Windows  # noqa: E402

__all__ = ["plot_display", "plot_efficiency", "plot_eta"]

LABELS = {"deepcore": "DeepCore", "baseline": "jet-core pairs", "baseline_kmeans": "jet-core pairs + K-means"}


def _binned(x: np.ndarray, found: np.ndarray, edges: np.ndarray):
    idx = np.digitize(x, edges) - 1
    ok = (idx >= 0) & (idx < len(edges) - 1)
    n = np.bincount(idx[ok], minlength=len(edges) - 1)
    k = np.bincount(idx[ok], weights=found[ok].astype(float), minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = k / n
        err = np.sqrt(eff * (1 - eff) / n)
    return 0.5 * (edges[1:] + edges[:-1]), eff, err


def plot_efficiency(tracks: pd.DataFrame, path: Path, title: str = "", ylabel: str = "seeding efficiency",
                    pt_edges=None) -> Path:
    """Efficiency against DeltaR(track, jet) and against jet pT (bins ``pt_edges`` [GeV], default 1 to 2.6 TeV),
    one curve per method; ``title`` above. In the field's style (`deepreco.plotstyle`)."""
    with hep_style():
        return _plot_efficiency(tracks, path, title, ylabel,
                                np.linspace(1000, 2600, 9) if pt_edges is None else np.asarray(pt_edges, float))


def _plot_efficiency(tracks: pd.DataFrame, path: Path, title: str, ylabel: str, pt_edges: np.ndarray) -> Path:
    sel = tracks[tracks["selected"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for name, label in LABELS.items():
        col = f"found_{name}"
        if col not in sel:
            continue
        for ax, var, edges in ((axes[0], "dr", np.linspace(0, 0.1, 11)),
                               (axes[1], "jet_pt", pt_edges)):
            x, eff, err = _binned(sel[var].to_numpy(), sel[col].to_numpy(), edges)
            ax.errorbar(x, eff, yerr=err, marker="o", capsize=2, label=label)
    axes[0].set_xlabel(r"$\Delta R$(track, jet axis)")
    axes[1].set_xlabel(r"jet $p_T$ [GeV]")
    for ax in axes:
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_eta(seeds: pd.DataFrame, tracks: pd.DataFrame, path: Path, title: str = "") -> Path:
    """DeepCore's associated seeds: eta residual, and predicted against simulated eta; ``title`` above. In the
    field's style (`deepreco.plotstyle`)."""
    with hep_style():
        return _plot_eta(seeds, tracks, path, title)


def _plot_eta(seeds: pd.DataFrame, tracks: pd.DataFrame, path: Path, title: str) -> Path:
    t = tracks.drop_duplicates(["event", "particle_id"])[["event", "particle_id", "eta"]]
    m = seeds[seeds["particle_id"] >= 0].merge(t, on=["event", "particle_id"], suffixes=("", "_true"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    res = m["eta"] - m["eta_true"]
    axes[0].hist(res, bins=60, range=(-0.006, 0.006))
    axes[0].set_xlabel(r"$\eta_{seed} - \eta_{sim}$")
    axes[0].set_title(f"{len(m)} associated seeds, RMS {np.sqrt(np.mean(res ** 2)) if len(m) else np.nan:.4f}")
    axes[1].hist2d(m["eta_true"], m["eta"], bins=50, cmap="viridis")
    axes[1].set_xlabel(r"$\eta_{sim}$")
    axes[1].set_ylabel(r"$\eta_{seed}$")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_display(windows: Windows, prob: np.ndarray, flags: np.ndarray, sample: int, path: Path,
                 thresholds=(0.85, 0.75, 0.65)) -> Path:
    """The four windows of one direction, with true (circles) and predicted (crosses) crossing points."""
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    radii = (3.0, 6.8, 10.2, 16.0)
    for layer, ax in enumerate(axes):
        ax.imshow(windows.inputs[sample, layer].T, origin="lower", cmap="Greys", vmin=0, vmax=2)
        ax.set_title(f"layer {layer + 1} (r = {radii[layer]} cm)")
        ax.set_xlabel("u pixel (r-phi)")
        if layer == 1:
            for k, marker in enumerate(("o", "s", "D")):
                a, b = np.nonzero(flags[sample, k])
                ax.scatter(a, b, facecolors="none", edgecolors="tab:blue", marker=marker, s=60,
                           label="true TCP" if k == 0 else None)
                a, b = np.nonzero(prob[sample, k] > thresholds[k])
                ax.scatter(a, b, c="tab:red", marker="x", s=40, label="predicted" if k == 0 else None)
            ax.legend(loc="upper right", fontsize=8)
        ax.plot([HALF], [HALF], "+", color="tab:green")
        ax.set_xlim(-0.5, WINDOW - 0.5)
        ax.set_ylim(-0.5, WINDOW - 0.5)
    axes[0].set_ylabel("v pixel (z)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

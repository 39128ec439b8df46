"""Pictures: an event display (x-y and r-z, by truth and by cluster), resolution against energy, efficiency
against the distance between two showers, time against hit count. matplotlib with the Agg backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _styled(draw):
    """Draw and write a picture in the field's style (`deepreco.plotstyle`): the style holds for both."""
    from functools import wraps

    from ..plotstyle import hep_style

    @wraps(draw)
    def styled(*args, **kwargs):
        with hep_style():
            return draw(*args, **kwargs)
    return styled


def _colours(labels: np.ndarray) -> np.ndarray:
    """A colour per label, grey for <= 0 (noise / unclustered)."""
    plt = _plt()
    cmap = plt.get_cmap("tab20")
    uniq = {v: i for i, v in enumerate(np.unique(labels[labels > 0]))}
    out = np.array([cmap(uniq[v] % 20) if v > 0 else (0.7, 0.7, 0.7, 0.4) for v in labels])
    return out.reshape(-1, 4)


@_styled
def event_display(event, hit_table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """x-y and r-z views, coloured by the truth particle (left) and by the cluster (right)."""
    plt = _plt()
    hits = event.hits
    size = 2 + 40 * np.sqrt(hits["energy"].to_numpy() / max(hits["energy"].max(), 1e-9))
    r = np.hypot(hits["x"], hits["y"])
    truth = event.truth["particle_id"].to_numpy() if event.truth is not None else np.zeros(len(hits))
    cluster = hit_table["cluster_id"].to_numpy() + 1  # -1 (none) -> 0, grey
    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    for col, (labels, what) in enumerate([(truth, "truth particle"), (cluster, "cluster")]):
        c = _colours(labels)
        axes[0, col].scatter(hits["x"], hits["y"], s=size, c=c, linewidths=0)
        axes[0, col].set(xlabel="x [mm]", ylabel="y [mm]", title=f"x-y by {what}")
        axes[1, col].scatter(hits["z"], r, s=size, c=c, linewidths=0)
        axes[1, col].set(xlabel="z [mm]", ylabel="r [mm]", title=f"r-z by {what}")
    signal = truth > 0 if truth.any() else np.ones(len(hits), bool)
    if signal.any():  # zoom on the showers; noise hits spread over the whole endcap
        for ax, (u, v) in ((axes[0], (hits["x"], hits["y"])), (axes[1], (hits["z"], r))):
            u, v = np.asarray(u)[signal], np.asarray(v)[signal]
            for a in ax:
                a.set_xlim(u.min() - 100, u.max() + 100)
                a.set_ylim(v.min() - 100, v.max() + 100)
    fig.suptitle(title)
    return _save(plt, fig, path)


@_styled
def resolution_vs_energy(result: dict, path: Path, title: str = "") -> Path:
    """Resolution against true energy, EM and hadronic particles, one line per method; ``title`` above."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, kind, name in ((axes[0], 1, "EM (e, gamma)"), (axes[1], 2, "hadronic (pi)")):
        for method, summary in result["methods"].items():
            df = pd.DataFrame(summary.get("resolution_vs_energy", []))
            if df.empty:
                continue
            df = df[(df["kind"] == kind) & (df["n"] >= 5)]
            ax.plot((df["e_lo"] + df["e_hi"]) / 2, df["resolution"], "o-", label=method)
        ax.set(xlabel="true energy [GeV]", ylabel="resolution (68 % half-width / median)", title=name)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(plt, fig, path)


@_styled
def efficiency_vs_distance(table: pd.DataFrame, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for method, df in table.groupby("method", sort=False):
        ax.plot(df["distance_mm"], df["efficiency"], "o-", label=method)
    ax.set(xlabel="distance between the two showers at the face [mm]", ylabel="efficiency", ylim=(0, 1.05),
           title="two 20 GeV photons")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


@_styled
def time_vs_hits(table: pd.DataFrame, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for method, df in table.groupby("method", sort=False):
        ax.plot(df["hits"], df["seconds"], "o-", label=method)
    ax.set(xlabel="hits in the event", ylabel="seconds per event (1 CPU thread)", xscale="log", yscale="log")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


@_styled
def close_pairs(table: pd.DataFrame, path: Path) -> Path:
    """Efficiency against distance for each pair (column ``pair``), one panel a pair, a line a method."""
    plt = _plt()
    pairs = list(dict.fromkeys(table["pair"]))
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4.2), squeeze=False)
    for ax, pair in zip(axes[0], pairs, strict=True):
        for method, df in table[table["pair"] == pair].groupby("method", sort=False):
            ax.plot(df["distance_mm"], df["efficiency"], "o-", label=method)
        ax.set(xlabel="distance at the face [mm]", ylabel="efficiency", ylim=(0, 1.05), title=pair)
        ax.legend(fontsize=8)
    return _save(plt, fig, path)


@_styled
def time_vs_pileup(table: pd.DataFrame, path: Path) -> Path:
    """Seconds per event against pile-up mu (columns mu, method, setting, seconds): a panel a setting (threads,
    load), a line a method; the hits an event on the top axis of the first."""
    plt = _plt()
    settings = list(dict.fromkeys(table["setting"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 4.2), squeeze=False, sharey=True)
    for ax, setting in zip(axes[0], settings, strict=True):
        for method, df in table[table["setting"] == setting].groupby("method", sort=False):
            df = df.groupby("mu", as_index=False)["seconds"].median()
            ax.plot(df["mu"], df["seconds"], "o-", label=method)
        ax.set(xlabel="pile-up mu", yscale="log", title=setting)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("seconds per event (wall)")
    return _save(plt, fig, path)

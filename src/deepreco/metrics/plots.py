"""Efficiency plots (matplotlib's object interface with the Agg canvas: no pyplot, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .efficiency import efficiency_table

__all__ = ["plot_efficiencies", "plot_efficiency"]

_LABELS = {"pt": r"particle $p_\mathrm{T}$ [GeV]", "eta": r"particle $\eta$"}


def _new_axes():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.8))
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def plot_efficiency(table: pd.DataFrame, ax=None, label: str | None = None, logx: bool | None = None,
                    **kwargs):
    """Draw an `efficiency_table` as points with Clopper-Pearson error bars; returns the axes.

    Without `ax`, a new matplotlib Figure (Agg canvas) is made: ``ax.figure.savefig(...)`` writes it.
    `logx` defaults to True for a pT table (``table.attrs["var"] == "pt"``). Empty bins are not drawn.
    Extra keyword arguments go to ``ax.errorbar``.
    """
    if ax is None:
        ax = _new_axes()
    var = table.attrs.get("var")
    if logx is None:
        logx = var == "pt"
    low = table["low"].to_numpy(dtype=np.float64)
    high = table["high"].to_numpy(dtype=np.float64)
    eff = table["efficiency"].to_numpy(dtype=np.float64)
    filled = np.isfinite(eff)
    centre = np.sqrt(low * high) if logx and (low > 0).all() else 0.5 * (low + high)
    yerr = np.vstack([eff - table["lower"].to_numpy(dtype=np.float64),
                      table["upper"].to_numpy(dtype=np.float64) - eff])[:, filled]
    xerr = np.vstack([centre - low, high - centre])[:, filled]
    style = {"fmt": "o", "markersize": 4, "capsize": 0}
    style.update(kwargs)
    ax.errorbar(centre[filled], eff[filled], xerr=xerr, yerr=yerr, label=label, **style)
    if logx:
        ax.set_xscale("log")
    ax.set_xlim(low[0], high[-1])
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel(_LABELS.get(str(var), str(var)))
    ax.set_ylabel("efficiency")
    ax.grid(True, alpha=0.3)
    if label is not None:
        ax.legend(loc="lower right")
    return ax


def plot_efficiencies(truth: pd.DataFrame, particles: pd.DataFrame, submission: pd.DataFrame, path,
                      matching: str = "double_majority", min_hits: int = 4, min_track_hits: int = 4,
                      dpi: int = 100, title: str | None = None) -> Path:
    """Write a PNG with the efficiency vs pT (no pT cut) and vs eta (pT > 1 GeV) side by side, in the field's
    style (`deepreco.plotstyle`), ``title`` above them (what the tracks are, their score, the event).

    The file is written under a temporary name in the same folder and then renamed, so a reader never sees
    a half-written file. Returns the path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..plotstyle import hep_style

    path = Path(path)
    with hep_style():
        fig = Figure(figsize=(12.0, 5.0))
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 2)
        for ax, var in zip(axes, ("pt", "eta"), strict=True):
            table = efficiency_table(truth, particles, submission, var=var, matching=matching,
                                     min_hits=min_hits, min_track_hits=min_track_hits)
            plot_efficiency(table, ax=ax)
            cut = "" if var == "pt" else r", $p_\mathrm{T} > 1$ GeV"
            ax.set_title(f"{matching.replace('_', ' ')} matching{cut}")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fig.savefig(tmp, format="png", dpi=dpi)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    return path

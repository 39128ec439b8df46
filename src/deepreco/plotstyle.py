"""The field's plot style for deepreco's pictures: mplhep's (Scikit-HEP) when it is installed
(``pip install 'deepreco[plots]'``), matplotlib's own otherwise; the same figures either way.

>>> from deepreco.plotstyle import hep_style
>>> with hep_style():          # doctest: +SKIP
...     fig = Figure(); ...; fig.savefig("plot.png")

The style holds while the figure is made and written (matplotlib reads its settings at both times); outside,
matplotlib is as the caller left it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

# mplhep's ROOT look: the field's axes, ticks and fonts without an experiment's name on the picture; the sizes
# scaled down, as the pictures here are smaller than the style's 10 x 10 inches
STYLE = "ROOT"
SCALE = {"font.size": 14, "axes.titlesize": 14, "axes.labelsize": 14, "legend.fontsize": 11,
         "xtick.labelsize": 12, "ytick.labelsize": 12, "figure.titlesize": 14, "axes.titlepad": 8}


@contextmanager
def hep_style() -> Iterator[bool]:
    """Draw in the field's style while in this context; yields whether mplhep was there to give it."""
    import matplotlib.style

    try:
        import mplhep
    except ImportError:  # an optional dependency: plain matplotlib
        yield False
        return
    with matplotlib.style.context([getattr(mplhep.style, STYLE), SCALE]):
        yield True

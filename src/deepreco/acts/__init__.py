"""ACTS in the loop (optional extra ``acts``: ``pip install 'deepreco[acts]'``, the ``pyacts`` wheel).

- `convert`: deepreco events to ACTS's event data and back (geometry identifiers, local measurements with their
  variances, particles, truth), through the module-id table of `geometry`;
- `fit`: the Kalman fit of any method's tracks (ACTS's KalmanFitter), the track parameters at the beam line.

ACTS is imported only inside these modules' functions, so that deepreco works without it; when it is missing
`require` raises a one-line :class:`DeepRecoError`.
"""

from __future__ import annotations

from ..errors import DeepRecoError

INSTALL_HINT = "ACTS is not installed: pip install 'deepreco[acts]' (the pyacts wheel, Python 3.11, Linux x86_64)"


def require():
    """The ``acts`` and ``acts.examples`` modules; a `DeepRecoError` when the extra is not installed."""
    try:
        import acts
        import acts.examples
    except ImportError:
        raise DeepRecoError(INSTALL_HINT) from None
    return acts


def available() -> bool:
    """Whether ACTS can be imported (the ``acts`` extra is installed)."""
    try:
        require()
    except DeepRecoError:
        return False
    return True

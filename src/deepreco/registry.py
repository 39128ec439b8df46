"""One way to find a method by name, for every family of methods deepreco has.

A family (track finding, calorimeter clustering, DeepCore seeding) is a `Registry`. A method is a class with
its parameters in ``__init__`` (stored under the same names, as scikit-learn estimators do) and one call,
``reconstruct(event)``, that returns the family's table; ``@REGISTRY.register("name")`` makes it findable, and
``REGISTRY.get("name", **params)`` builds it with its parameters checked against the signature:

>>> from deepreco.registry import families
>>> sorted(families())[:2], "tracking" in families()
(['calo', 'seeding'], True)
>>> families()["tracking"].get("ckf", pt_min=0.5).pt_min
0.5
>>> families()["tracking"].get("ckf", pt_mni=0.5)          # doctest: +ELLIPSIS
Traceback (most recent call last):
deepreco.errors.DeepRecoError: method 'ckf' has no parameter pt_mni; it takes pt_min, ...
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

from .errors import DeepRecoError

_FAMILIES: dict[str, Registry] = {}


class Registry:
    """The methods of one family, by name.

    Parameters
    ----------
    family : str
        Short name of the family (``tracking``, ``calo``, ``seeding``).
    what : str
        What one of them is called in messages ("method", "calorimeter method", ...).
    """

    def __init__(self, family: str, what: str):
        self.family, self.what = family, what
        self._classes: dict[str, type] = {}
        _FAMILIES[family] = self

    def register(self, name: str):
        """Class decorator: make a method findable by ``name`` (sets its ``name`` attribute)."""

        def wrap(cls):
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            cls.name = name
            self._classes[name] = cls
            return cls

        return wrap

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._classes)

    def __getitem__(self, name: str) -> type:
        if name not in self._classes:
            raise DeepRecoError(f"unknown {self.what} {name!r}; available: {', '.join(self.names())}")
        return self._classes[name]

    def parameters(self, name: str) -> dict[str, object]:
        """The parameters of method ``name`` with their defaults (``inspect.Parameter.empty`` when required)."""
        return {k: p.default for k, p in inspect.signature(self[name]).parameters.items()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    def get(self, name: str, **params):
        """Method ``name`` built with ``params``; an unknown name or parameter is a `DeepRecoError`."""
        accepted = self.parameters(name)
        unknown = [k for k in params if k not in accepted]
        if unknown:
            raise DeepRecoError(f"{self.what} {name!r} has no parameter {', '.join(unknown)}; "
                                f"it takes {', '.join(accepted) or 'none'}")
        return self._classes[name](**params)


def families() -> dict[str, Registry]:
    """Every family, with its methods registered (importing the families' packages registers them)."""
    from .calo import methods  # noqa: F401
    from .deepcore import seeders  # noqa: F401
    from .reconstruct import base  # noqa: F401  (the package registers every tracking method)

    return dict(_FAMILIES)


def get_params(method) -> dict[str, object]:
    """A method's parameters as it was built (the ``__init__`` arguments it stores under their own names)."""
    names = inspect.signature(type(method)).parameters
    return {k: getattr(method, k) for k in names if hasattr(method, k)}

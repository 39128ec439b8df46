"""One way to find a thing by name, for every family of things deepreco takes by name.

A family (track finding, calorimeter clustering, DeepCore seeding; generators, exportable networks, ...) is a
`Registry`. Its names are plain data, written below with the module that defines each, so a command checks a
name before torch, numba or pandas are imported; the module is imported when the thing itself is wanted.

A method is a class with its parameters in ``__init__`` (stored under the same names, as scikit-learn estimators
do) and one call, ``reconstruct(event)``, that returns the family's table; ``@REGISTRY.register("name")`` in its
module makes it findable (deepreco's own under a name listed below, with that module), and
``REGISTRY.get("name", **params)`` builds it with its parameters checked against the signature:

>>> from deepreco.registry import TRACKING, families
>>> sorted(families())[:2], "tracking" in families()
(['calo', 'seeding'], True)
>>> "ckf" in TRACKING, "nope" in TRACKING                  # plain data: nothing imported yet
(True, False)
>>> families()["tracking"].get("ckf", pt_min=0.5).pt_min
0.5
>>> families()["tracking"].get("ckf", pt_mni=0.5)          # doctest: +ELLIPSIS
Traceback (most recent call last):
deepreco.errors.DeepRecoError: method 'ckf' has no parameter pt_mni; it takes pt_min, ...
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Iterator

from .errors import DeepRecoError

_FAMILIES: dict[str, Registry] = {}


class Registry:
    """The things of one family, by name.

    Parameters
    ----------
    family : str
        Short name of the family (``tracking``, ``calo``, ``seeding``, ...).
    what : str
        What one of them is called in messages ("method", "calorimeter method", ...).
    where : dict, optional
        Each of deepreco's own names and the module that registers it (None: a name with nothing to load, plain
        data): these names are known before anything is imported. A name registered at run time (a user's own
        method) joins them, for the Python API; the command line knows the listed ones.
    methods : bool
        A family of reconstruction methods (`families`, ``deepreco methods``).
    """

    def __init__(self, family: str, what: str, where: dict[str, str | None] | None = None, methods: bool = False):
        self.family, self.what = family, what
        self._where = dict(where) if where is not None else None
        self.listed = tuple(self._where or ())
        self._objects: dict[str, object] = {}
        if methods:
            _FAMILIES[family] = self

    def register(self, name: str):
        """Class decorator: make a method findable by ``name`` (sets its ``name`` attribute)."""

        def wrap(cls):
            self.add(name, cls)
            cls.name = name
            return cls

        return wrap

    def add(self, name: str, obj: object) -> None:
        """Make ``obj`` findable by ``name``."""
        if name in self._objects and self._objects[name] is not obj:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._objects[name] = obj

    def names(self) -> list[str]:
        """The names in the order listed, then any registered at run time; nothing is imported."""
        return [*self.listed, *(n for n in self._objects if n not in self.listed)]

    def __contains__(self, name) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def check(self, name: str) -> str:
        """``name`` if the family has it; a one-line `DeepRecoError` naming the others if not (nothing imported)."""
        if name not in self:
            raise DeepRecoError(f"unknown {self.what} {name!r}; available: {', '.join(self.names())}")
        return name

    def __getitem__(self, name: str):
        self.check(name)
        module = (self._where or {}).get(name)
        if name not in self._objects and module:
            importlib.import_module(module)  # its module registers it
        if name not in self._objects:
            raise RuntimeError(f"{self.what} {name!r} is listed in deepreco.registry but "
                               f"{module or 'no module'} does not register it")
        return self._objects[name]

    def items(self) -> list[tuple[str, object]]:
        """Every name with its thing (imports every module of the family)."""
        return [(name, self[name]) for name in self.names()]

    def parameters(self, name: str) -> dict[str, object]:
        """The parameters of method ``name`` with their defaults (``inspect.Parameter.empty`` when required)."""
        return {k: p.default for k, p in inspect.signature(self[name]).parameters.items()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    def get(self, name: str, **params):
        """Method ``name`` built with ``params``; an unknown name or parameter, or text given for a parameter
        whose default is a number or true / false, is a `DeepRecoError` (`check_params`)."""
        self.check_params(name, params)
        return self[name](**params)

    def check_params(self, name: str, params: dict) -> None:
        """`DeepRecoError` for a parameter method ``name`` does not take, or text given for one whose default is a
        number or true / false; the method itself is not built."""
        accepted = self.parameters(name)
        unknown = [k for k in params if k not in accepted]
        if unknown:
            raise DeepRecoError(f"{self.what} {name!r} has no parameter {', '.join(unknown)}; "
                                f"it takes {', '.join(accepted) or 'none'}")
        ranges = getattr(self[name], "ranges", {})
        for key, value in params.items():
            default = accepted[key]
            if isinstance(value, str) and isinstance(default, (bool, int, float)):
                kind = "true or false" if isinstance(default, bool) else "a number"
                raise DeepRecoError(f"{self.what} {name!r}: parameter {key} must be {kind}, got {value!r}")
            if key in ranges and isinstance(value, (int, float)) and not isinstance(value, bool):
                why = out_of_range(value, ranges[key])
                if why:
                    raise DeepRecoError(f"{self.what} {name!r}: parameter {key} must be {why}, got {value!r}")


def out_of_range(value: float, bound: str) -> str | None:
    """What ``value`` should be when it is outside ``bound`` (``"> 0"``, ``">= 1"``), else None; NaN and the
    infinities are always outside."""
    op, limit = bound.split()
    if not math.isfinite(value):
        return f"a finite number {bound}"
    return None if (value > float(limit) if op == ">" else value >= float(limit)) else bound


def families() -> dict[str, Registry]:
    """Every family of reconstruction methods (tracking, calo, seeding), with its methods registered."""
    for registry in _FAMILIES.values():
        registry.items()
    return dict(_FAMILIES)


def setting_value(text: str, booleans: bool = True):
    """A KEY=VALUE setting's value: true / false / none (any case; with ``booleans``), an integer, a number, a
    comma-separated tuple of these ("1,10"), or the text itself."""
    parts: list[object] = []
    for part in text.split(","):
        low = part.strip().lower()
        if booleans and low in ("true", "false", "none"):
            parts.append({"true": True, "false": False, "none": None}[low])
            continue
        for cast in (int, float):
            try:
                parts.append(cast(part))
                break
            except ValueError:
                continue
        else:
            parts.append(part)
    return tuple(parts) if len(parts) > 1 else parts[0]


def method_settings(registry: Registry, names, settings) -> dict[str, dict]:
    """Per method of ``names``, the ``settings`` ("KEY=VALUE" texts) it takes (`setting_value`); a setting none of
    them takes, or one without "=", is a `DeepRecoError`."""
    out: dict[str, dict] = {name: {} for name in names}
    for item in settings or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            from .errors import UsageError

            raise UsageError(f"--set {item}: expected KEY=VALUE")
        takers = [name for name in names if key in registry.parameters(name)]
        if not takers:
            raise DeepRecoError(f"--set {item}: no {registry.what} of {', '.join(names)} has a parameter {key}")
        for name in takers:
            out[name][key] = setting_value(value.strip())
    return out


def get_params(method) -> dict[str, object]:
    """A method's parameters as it was built (the ``__init__`` arguments it stores under their own names)."""
    names = inspect.signature(type(method)).parameters
    return {k: getattr(method, k) for k in names if hasattr(method, k)}


# The families. A new method, generator or network is listed here, with its module, and registered there.

TRACKING = Registry("tracking", "method", {
    "acts-ckf": "deepreco.acts.ckf", "ckf": "deepreco.reconstruct.ckf", "dbscan": "deepreco.reconstruct.dbscan",
    "gnn": "deepreco.reconstruct.gnn.method", "lstm": "deepreco.reconstruct.lstm.method",
    "truth": "deepreco.reconstruct.truth"}, methods=True)
CALO = Registry("calo", "calorimeter method", dict.fromkeys(("clue", "edgeconv", "garnet", "gravnet"),
                                                            "deepreco.calo.methods"),
                methods=True)
SEEDING = Registry("seeding", "seeder", dict.fromkeys(("deepcore", "jetcore"), "deepreco.deepcore.seeders"),
                   methods=True)

GENERATORS = Registry("generator", "generator", dict.fromkeys(("ttbar", "dijet", "gun", "trackml"),
                                                             "deepreco.generate"))
# `deepreco export NAME`: the ONNX networks, and the Triton Python-backend models (which call some of them)
NETWORKS = Registry("network", "network", dict.fromkeys(
    ("lstm", "deepcore", "gnn-filter", "gnn-network", "gnn-embedding", "calo-gravnet", "calo-edgeconv", "calo-garnet",
     "calo-drn",
     *(f"toy-{n}" for n in ("lstm", "deep_lstm", "bilstm", "next_layer_lstm", "convnn", "conv_autoencoder"))),
    "deepreco.export.networks"))
PYTHON_MODELS = Registry("python-model", "Python-backend model", dict.fromkeys(
    ("gnn-graph", "gnn-tracks", "gnn", "calo-condensation", "gravnet"), "deepreco.export.pybackend"))
CALO_NETWORKS = Registry("calo-network", "calorimeter network", dict.fromkeys(("gravnet", "edgeconv", "garnet", "drn"),
                                                                              "deepreco.calo.models"))
TOY_MODELS = Registry("toy", "toy model", {**dict.fromkeys(("lstm", "deep_lstm", "bilstm", "next_layer_lstm", "convnn",
                                                            "conv_autoencoder"), "deepreco.toys.models"),
                                           **dict.fromkeys(("hough", "kalman"), "deepreco.toys.benchmark")})
LSTM_MODELS = Registry("lstm-model", "LSTM model", dict.fromkeys(
    ("lstm", "bilstm", "lstm-1024", "lstm-2048", "lstm-256-512-1024", "bilstm-seed"),
    "deepreco.reconstruct.lstm.model"))
# names with nothing behind them to load: what the modules that take them compare with
CALO_SOURCES = Registry("calo-source", "particle source", dict.fromkeys(("gun", "tau", "mix")))
FALLBACKS = Registry("fallback", "fallback", dict.fromkeys(("local",)))  # --fallback: the networks in-process

"""Where events come from: Pythia 8 collisions, particle guns, real TrackML particle lists.

Every generator returns the same particle table, the TrackML ``particles`` table plus the PDG id:
particle_id (int64, unique, > 0), vx, vy, vz [mm], px, py, pz [GeV] (float32), q (int32, -1, 0 or 1),
nhits (int32, 0: the simulation counts the hits) and particle_type (int32 PDG id, 0 when unknown).
Each takes ``seed`` (an int or a numpy Generator): the same seed gives the same table, byte for byte.

>>> from deepreco.generate import generate
>>> table = generate("gun", seed=1, n=5, pdg=211)
>>> list(table.columns)
['particle_id', 'vx', 'vy', 'vz', 'px', 'py', 'pz', 'q', 'nhits', 'particle_type']
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..registry import GENERATORS
from .gun import particle_gun, pdg_charge
from .pythia import dijets, ttbar_with_pileup
from .table import PARTICLE_COLUMNS, GeneratorError, check_particles, particle_table
from .trackml import trackml_particles

if TYPE_CHECKING:  # pandas comes with the first table: `check_options` runs without it
    import pandas as pd

# the names are listed in deepreco.registry (a command checks one before pandas is imported)
for _name, _func in (("ttbar", ttbar_with_pileup), ("dijet", dijets), ("gun", particle_gun),
                     ("trackml", trackml_particles)):
    GENERATORS.add(_name, _func)
# The command line speaks of --pileup and --particles for every generator.
_ALIASES = {"ttbar": {"pileup": "mu"}, "trackml": {"particles": "path"}}


def generate(name: str, seed=None, **options) -> pd.DataFrame:
    """One event's particle table from the generator called ``name`` (a key of GENERATORS).

    ``seed`` goes to the generators that draw random numbers (all but ``trackml``).

    >>> len(generate("gun", seed=1, n=3))
    3
    """
    options = check_options(name, options)
    if "seed" in inspect.signature(GENERATORS[name]).parameters:
        options["seed"] = seed
    return GENERATORS[name](**options)


def check_options(name: str, options: dict) -> dict:
    """``options`` as generator ``name`` takes them (the command line's names mapped to its own), or
    `GeneratorError` / `UsageError` for an unknown generator or option, or a value of the wrong kind. Imports
    neither pandas nor Pythia: a command checks its options before it starts.

    >>> check_options("ttbar", {"pileup": 20})
    {'mu': 20}
    """
    if name not in GENERATORS:
        raise GeneratorError(f"unknown generator {name!r}; expected one of {', '.join(GENERATORS)}")
    aliases = _ALIASES.get(name, {})
    options = {aliases.get(k, k): v for k, v in options.items()}
    accepted = inspect.signature(GENERATORS[name]).parameters
    unknown = [k for k in options if k not in accepted or k == "seed"]
    if unknown:
        names = [*(p for p in accepted if p != "seed"), *aliases]
        raise GeneratorError(f"generator {name!r} has no option {', '.join(unknown)}; "
                             f"it takes {', '.join(names)}")
    _check_types(name, accepted, options)
    return options


def _check_types(name: str, accepted, options: dict) -> None:
    """`UsageError` for an option whose value is not of its default's kind: text or NaN where a generator takes
    numbers (``--set n=abc``), a fraction where it counts (``--set n=2.5``)."""
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    for key, value in options.items():
        param = accepted[key]
        default = param.default
        values = value if isinstance(value, (tuple, list)) else (value,)
        if number(default) or (isinstance(default, tuple) and default and all(map(number, default))):
            whole = isinstance(default, int) and "float" not in str(param.annotation)
            kind = "whole numbers" if whole else "finite numbers"
            if not values or not all(number(v) and (not whole or float(v).is_integer()) for v in values):
                shown = ",".join(map(str, values))
                raise UsageError(f"option {key}={shown} of generator {name!r}: {key} takes {kind}"
                                 + (" (one, or a range as two: LOW,HIGH)" if isinstance(default, tuple) else ""))


__all__ = ["GENERATORS", "PARTICLE_COLUMNS", "GeneratorError", "check_options", "check_particles", "dijets", "generate",
           "particle_gun", "particle_table", "pdg_charge", "trackml_particles", "ttbar_with_pileup"]

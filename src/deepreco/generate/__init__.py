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

import pandas as pd

from .gun import particle_gun, pdg_charge
from .pythia import dijets, ttbar_with_pileup
from .table import PARTICLE_COLUMNS, GeneratorError, check_particles, particle_table
from .trackml import trackml_particles

GENERATORS = {
    "ttbar": ttbar_with_pileup,
    "dijet": dijets,
    "gun": particle_gun,
    "trackml": trackml_particles,
}
# The command line speaks of --pileup and --particles for every generator.
_ALIASES = {"ttbar": {"pileup": "mu"}, "trackml": {"particles": "path"}}


def generate(name: str, seed=None, **options) -> pd.DataFrame:
    """One event's particle table from the generator called ``name`` (a key of GENERATORS).

    ``seed`` goes to the generators that draw random numbers (all but ``trackml``).

    >>> len(generate("gun", seed=1, n=3))
    3
    """
    if name not in GENERATORS:
        raise GeneratorError(f"unknown generator {name!r}; expected one of {', '.join(GENERATORS)}")
    func = GENERATORS[name]
    aliases = _ALIASES.get(name, {})
    options = {aliases.get(k, k): v for k, v in options.items()}
    accepted = inspect.signature(func).parameters
    unknown = [k for k in options if k not in accepted or k == "seed"]
    if unknown:
        names = [*(p for p in accepted if p != "seed"), *aliases]
        raise GeneratorError(f"generator {name!r} has no option {', '.join(unknown)}; "
                             f"it takes {', '.join(names)}")
    if "seed" in accepted:
        options["seed"] = seed
    return func(**options)


__all__ = ["GENERATORS", "PARTICLE_COLUMNS", "GeneratorError", "check_particles", "dijets", "generate",
           "particle_gun", "particle_table", "pdg_charge", "trackml_particles", "ttbar_with_pileup"]

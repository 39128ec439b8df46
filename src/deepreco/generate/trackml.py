"""Real TrackML particle lists (``event...-particles.csv[.gz]`` or Parquet), taken as they are.

The challenge's files have no ``particle_type`` column: it becomes 0 ("unknown"), since q alone does not tell
the species. Their ``nhits`` (the real hit counts) is kept so that a simulation of the list can be compared
with the real event; a simulation overwrites it with its own count.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FormatError
from .table import check_particles

if TYPE_CHECKING:
    import pandas as pd


def trackml_particles(path) -> pd.DataFrame:
    """The particle table of a TrackML particles file.

    Raises MissingFileError when the file is not there, FormatError naming the file when it cannot be read or
    is not a valid particle list: a missing column, a NaN or infinite vertex or momentum, q not in {-1, 0, 1},
    a particle_id that is not positive or not unique.

    >>> from deepreco.generate import trackml_particles
    >>> from importlib import resources
    >>> table = trackml_particles(resources.files("deepreco") / "data" / "event000001001-particles.csv.gz")
    >>> len(table), int(table["particle_type"].max())
    (8915, 0)
    """
    from ..io import read_table

    path = Path(path)
    return check_particles(read_table(path, "particles"), str(path), error=FormatError)

"""Tracking efficiency, fake rate and duplicate rate.

Definitions:

* A *reconstructed track* is a submission track with at least ``min_track_hits`` hits (4 by default);
  smaller tracks, and truth hits the submission leaves out, are not tracks here.
* A track's *majority particle* is the particle contributing most of its hits (smallest particle_id on a
  tie, as in the TrackML score). The track is *associated* with it when more than half of the track's hits
  come from it and it is not noise (particle 0).
* fake rate = tracks not associated / tracks.
* duplicate rate = associated tracks whose particle has at least one other associated track / tracks: a
  track is a duplicate when at least one other reconstructed track is associated with the same particle
  (every track of such a group counts).
* Selected particles: rows of the particles table, not noise, with pT > ``pt_min`` (1 GeV by default) and
  at least ``min_hits`` truth hits (4 by default). Particles with hits in the truth but no row in the
  particles table have no pT and are never selected.
* A particle is *matched* by a track under

  - ``double_majority`` (the TrackML score's rule): more than 50 % of the track's hits come from the
    particle and the track holds more than 50 % of the particle's truth hits;
  - ``perfect``: the track holds exactly the particle's truth hits, all of them and nothing else.

* efficiency = selected particles matched by at least one track / selected particles.

Conventions for empty inputs, so that no value is NaN: no tracks gives a fake and a duplicate rate of 0.0;
no selected particles gives efficiencies of 0.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deepreco.errors import EventError

from .score import TrackTable, track_table
from .validation import IdIndex, float_column, integer_ids, locate, require_columns

__all__ = ["MATCHINGS", "tracking_metrics"]

#: The particle-track matchings known to `tracking_metrics` and `efficiency_table`.
MATCHINGS = ("double_majority", "perfect")


@dataclass(frozen=True)
class ParticleMatch:
    """The particles table's particles, their truth hit counts and whether a track matches them."""

    particle_ids: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray | None
    truth_nhits: np.ndarray
    matched: dict[str, np.ndarray]
    n_tracks: int
    n_fake: int
    n_duplicate: int

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)

    @property
    def eta(self) -> np.ndarray:
        """Pseudorapidity asinh(pz / pT); infinite or NaN for pT = 0."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.arcsinh(self.pz / self.pt)

    def selected(self, pt_min: float, min_hits: int) -> np.ndarray:
        return (self.particle_ids != 0) & (self.pt > pt_min) & (self.truth_nhits >= min_hits)


def _check_counts(min_hits: int, min_track_hits: int) -> None:
    if min_hits < 1:
        raise ValueError(f"min_hits must be at least 1, got {min_hits}")
    if min_track_hits < 1:
        raise ValueError(f"min_track_hits must be at least 1, got {min_track_hits}")


def match_particles(truth: pd.DataFrame, particles: pd.DataFrame, submission: pd.DataFrame,
                    min_track_hits: int = 4, with_pz: bool = False, validate: bool = True,
                    table: TrackTable | None = None) -> ParticleMatch:
    """Associate tracks with particles and flag the particles each matching finds (see module docstring)."""
    columns = ("particle_id", "px", "py", "pz") if with_pz else ("particle_id", "px", "py")
    require_columns(particles, columns, "particles", EventError)
    ids = integer_ids(particles["particle_id"], "particle_id", "particles", EventError)
    IdIndex(ids, "particle_id", "particles", EventError)  # refuses duplicated particle ids
    if table is None:
        table = track_table(truth, submission, with_weight=False, validate=validate)

    n_sub = table.n_assigned
    nhits = table.nhits[:n_sub]
    major = table.major[:n_sub]
    major_nhits = table.major_nhits[:n_sub]
    counted = nhits >= min_track_hits
    majority = counted & (2 * major_nhits > nhits)
    associated = majority & (table.particle_ids[major] != 0)
    per_particle = np.bincount(major[associated], minlength=table.particle_ids.size)
    duplicate = associated & (per_particle[major] >= 2)
    particle_nhits = table.particle_nhits[major]

    rules = {
        "double_majority": majority & (2 * major_nhits > particle_nhits),
        "perfect": counted & (major_nhits == nhits) & (major_nhits == particle_nhits),
    }
    pos, found = locate(table.particle_ids, ids)
    truth_nhits = np.where(found, table.particle_nhits[pos] if table.particle_ids.size else 0, 0)
    matched = {}
    for name, rule in rules.items():
        hit = np.zeros(table.particle_ids.size, dtype=bool)
        hit[major[rule]] = True
        matched[name] = found & (hit[pos] if hit.size else False)

    n_tracks = int(counted.sum())
    return ParticleMatch(
        particle_ids=ids,
        px=float_column(particles, "px"),
        py=float_column(particles, "py"),
        pz=float_column(particles, "pz") if with_pz else None,
        truth_nhits=truth_nhits,
        matched=matched,
        n_tracks=n_tracks,
        n_fake=n_tracks - int(associated.sum()),
        n_duplicate=int(duplicate.sum()),
    )


def tracking_metrics(truth: pd.DataFrame, particles: pd.DataFrame, submission: pd.DataFrame,
                     pt_min: float = 1.0, min_hits: int = 4, min_track_hits: int = 4,
                     validate: bool = True) -> dict:
    """Efficiency (both matchings), fake and duplicate rates of a submission (see the module docstring).

    `truth` needs hit_id and particle_id, `particles` particle_id, px and py, `submission` hit_id and
    track_id. Returns a dict: ``efficiency`` (double-majority matching), ``efficiency_perfect``,
    ``fake_rate``, ``duplicate_rate`` (floats; 0.0 when there are no tracks or no selected particles),
    ``n_tracks`` (reconstructed tracks counted) and ``n_particles`` (selected particles).
    """
    _check_counts(min_hits, min_track_hits)
    match = match_particles(truth, particles, submission, min_track_hits=min_track_hits, validate=validate)
    return summarise(match, pt_min, min_hits)


def summarise(match: ParticleMatch, pt_min: float, min_hits: int) -> dict:
    """The `tracking_metrics` dict of a ParticleMatch."""
    selected = match.selected(pt_min, min_hits)
    n_particles = int(selected.sum())
    n_tracks = match.n_tracks

    def share(count: int, total: int) -> float:
        return count / total if total else 0.0

    return {
        "efficiency": share(int((match.matched["double_majority"] & selected).sum()), n_particles),
        "efficiency_perfect": share(int((match.matched["perfect"] & selected).sum()), n_particles),
        "fake_rate": share(match.n_fake, n_tracks),
        "duplicate_rate": share(match.n_duplicate, n_tracks),
        "n_tracks": n_tracks,
        "n_particles": n_particles,
    }

"""Energy calibration of a clustering method: its clusters' response made 1, per cluster kind and energy.

A method's cluster energy E_reco is not the shot particle's energy E: a hadronic shower reads h/e low (0.6-0.85
of E in this calorimeter), the DRN pulls some energies up or down. The calibration is
learned on isolated photons, electrons and charged pions (`calibration_events`: energies flat in log E from 1.5 to
250 GeV, seeds (3000 + seed, pdg, i), none of the benchmarks'), per class of cluster by its shape (`shape_class`:
EM when 90 % of its energy lies in CE-E, hadronic otherwise, MIP for a muon's track; the same rule for every
method, since the networks' class heads call many pions EM or MIP), the EM curve learned on photons and electrons
in EM clusters, the hadronic one on pions in hadronic clusters; a MIP cluster keeps its energy (a muon's is not
what a calorimeter measures):

    per bin of log E (equal counts): x_b = median log E, y_b = x_b + median log(E_reco / E)
    E_cal = E_reco exp(interp(log E_reco; y_b -> x_b - y_b))     (the ratio held beyond the first and last bin)

The median commutes with a monotone map, so on the calibration set each bin's median E_cal / E is 1 (y_b is
made increasing first). It knows energy and shape only: a pion whose shower stays in CE-E gets the EM curve, and
an electron, whose tracker bremsstrahlung may land away from its cluster, the curve shared with photons.

The curves of every method live in one file beside the models, ``calo_calibration.json`` (the shipped one in
deepreco's model folder); `deepreco.calo.methods.get_method` gives a method the curves of its full name
(``clue``, ``gravnet+drn``, ...) by default, and the method applies them to its clusters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DeepRecoError, FormatError
from .clue import shape_kind
from .geometry import DEFAULT, Calorimeter
from .limit import one_particle
from .metrics import particle_table
from .showers import EM, HAD, MIP
from .truth import kind_of

FILE = "calo_calibration.json"
SEED = 3000
SPECIES = (22, 11, 211)
VERSION = 1


def calibration_events(n_per_species: int = 150, seed: int = 0, energy: tuple[float, float] = (1.5, 250.0),
                       species: Sequence[int] = SPECIES) -> list:
    """``n_per_species`` isolated particles of each species, energy flat in log E over ``energy`` GeV, event
    (pdg, i) from the seed (3000 + seed, pdg, i)."""
    events = []
    lo, hi = np.log(energy[0]), np.log(energy[1])
    for pdg in species:
        for i in range(n_per_species):
            rng = np.random.default_rng([SEED + seed, int(pdg), i])
            events.append(one_particle(int(pdg), float(np.exp(rng.uniform(lo, hi))), rng, event_id=len(events)))
    return events


def shape_class(hits: pd.DataFrame, hit_table: pd.DataFrame, clusters: pd.DataFrame,
                geometry: Calorimeter = DEFAULT) -> np.ndarray:
    """Per cluster (row of ``clusters``), by its hits alone (`clue.shape_kind`): MIP for a long thin track of
    MIP-sized hits, EM when 90 % of its energy lies in CE-E, hadronic otherwise. Not the method's own class: the
    networks' class heads call many pions EM or MIP."""
    kind = shape_kind(hits, hit_table["cluster_id"].to_numpy(), geometry)
    return kind.reindex(clusters["cluster_id"].to_numpy()).fillna(MIP).to_numpy(np.int64)


def responses(method, events) -> pd.DataFrame:
    """Per shot particle a method found: the class of its cluster (`shape_class`), its true and its reconstructed
    energy."""
    rows = []
    for event in events:
        ht, cl = method.reconstruct(event)
        p = particle_table(event, ht, cl)
        p = p[p["found"] & p["gun"]] if "gun" in p else p[p["found"]]
        kind = pd.Series(shape_class(event.hits, ht, cl), index=cl["cluster_id"].to_numpy())
        rows.append(pd.DataFrame({"pdg": p["pdg"].to_numpy(), "kind": kind.reindex(p["cluster_id"]).to_numpy(),
                                  "energy": p["energy"].to_numpy(), "reco_energy": p["reco_energy"].to_numpy()}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["pdg", "kind", "energy", "reco_energy"])


def fit_curves(table: pd.DataFrame, n_bins: int = 8, min_per_bin: int = 10) -> dict:
    """The curve of each class (EM, hadronic) from `responses`, learned on the particles of that kind in clusters
    of that class (photons and electrons in EM clusters, pions in hadronic ones: a pion in an EM cluster would
    pull the photons' curve): {class: {"log_reco", "log_true", "n"}}; a class with fewer than
    2 x ``min_per_bin`` particles gets none (its energies stay as they are)."""
    curves = {}
    ok = (table["energy"] > 0) & (table["reco_energy"] > 0)
    true_kind = kind_of(table["pdg"].to_numpy())
    for kind in (EM, HAD):
        g = table[ok & (table["kind"] == kind) & (true_kind == kind)]
        if len(g) < 2 * min_per_bin:
            continue
        log_e = np.log(g["energy"].to_numpy(np.float64))
        log_r = np.log(g["reco_energy"].to_numpy(np.float64)) - log_e
        bins = max(2, min(n_bins, len(g) // min_per_bin))
        which = np.minimum((np.argsort(np.argsort(log_e)) * bins) // len(g), bins - 1)  # equal counts
        x = np.array([np.median(log_e[which == b]) for b in range(bins)])
        y = x + np.array([np.median(log_r[which == b]) for b in range(bins)])
        # E_reco must rise with E for the map to be one-to-one: flatten any dip (a bin's fluctuation)
        y = np.maximum.accumulate(y + 1e-6 * np.arange(bins))
        curves[str(int(kind))] = {"log_reco": y.tolist(), "log_true": x.tolist(), "n": int(len(g))}
    return curves


def apply(curves: dict, energy: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Calibrated energies: each cluster's energy through the curve of its class (`shape_class`; unchanged
    without one)."""
    energy = np.asarray(energy, dtype=np.float64)
    kind = np.asarray(kind)
    out = energy.copy()
    for k, c in curves.items():
        sel = (kind == int(k)) & (energy > 0)
        if sel.any():
            y, x = np.asarray(c["log_reco"]), np.asarray(c["log_true"])
            out[sel] = energy[sel] * np.exp(np.interp(np.log(energy[sel]), y, x - y))
    return out


def read(folder: Path) -> dict:
    """The calibration file in ``folder``: {method name: curves}; empty when there is none."""
    path = Path(folder) / FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("version") != VERSION:
            raise FormatError(f"{path}: calibration version {data.get('version')!r}, expected {VERSION}")
        return {name: entry["curves"] for name, entry in data["methods"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FormatError(f"{path}: not a calorimeter calibration file ({type(exc).__name__} {exc})") from None


def calibrate(methods: Sequence[str], models_dir: Path | None = None, out: Path | None = None,
              n_per_species: int = 150, seed: int = 0, log=None) -> dict:
    """Learn the calibration of each of ``methods`` (names as `get_method` takes them) on `calibration_events`
    and write it into ``out/calo_calibration.json`` (``out``: ``models_dir``, or the shipped models' folder),
    keeping the entries of other methods already there; atomic. Returns what was written, with each method's
    median response per species before and after on the calibration set."""
    from ..modelfile import SHIPPED
    from .methods import get_method

    folder = Path(out or models_dir or SHIPPED)
    path = folder / FILE
    old = json.loads(path.read_text())["methods"] if read(folder) else {}
    events = calibration_events(n_per_species, seed)
    written = {}
    for name in methods:
        table = responses(get_method(name, models_dir, calibrated=False), events)
        curves = fit_curves(table)
        if not curves:
            raise DeepRecoError(f"calibration of {name}: too few particles found to fit a curve")
        after = apply(curves, table["reco_energy"].to_numpy(), table["kind"].to_numpy())
        table = table.assign(before=table["reco_energy"] / table["energy"], after=after / table["energy"])
        check = {str(int(pdg)): {"n": int(len(g)), "before": float(g["before"].median()),
                                 "after": float(g["after"].median())} for pdg, g in table.groupby(table["pdg"].abs())}
        written[name] = {"curves": curves, "trained_on": f"{n_per_species} isolated particles each of pdg "
                         f"{', '.join(map(str, SPECIES))}, 1.5-250 GeV flat in log E, seeds ({SEED + seed}, pdg, i)",
                         "median_response": check}
        if log is not None:
            log(f"{name}: " + ", ".join(f"pdg {k} {v['before']:.3f} -> {v['after']:.3f}" for k, v in check.items()))
        _write(path, {"version": VERSION, "methods": {**old, **written}})  # after each method: a long run keeps some
    return written


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

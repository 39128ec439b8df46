"""Events for DeepCore: Pythia 8 QCD dijets, anti-kt R = 0.4 jets from FastJet, the pixel barrel simulated.

Jets stand for calorimeter jets: FastJet clusters every final-state particle (neutrinos are already gone), then
the jet pT is smeared by a calorimeter-like resolution sigma/pT = 100 % / sqrt(pT [GeV]) (+) 5 % and the axis
by 0.01 in eta and in phi. Jets with pT > ``jet_pt_min`` (1 TeV) and |eta| < ``jet_eta_max`` (1.4) are kept.

The primary vertex is the hard collision's (Pythia puts the string hadrons there); tracking would measure it to
a few um, far below the pixel size, so it is used as it is.

fastjet is optional (``pip install fastjet``, the scikit-hep wheels); it is imported when jets are asked for.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..generate.table import GeneratorError, as_rng
from .detector import PixelBarrel, helix_crossings
from .pixelsim import cluster, digitize

__all__ = ["JetEvent", "find_jets", "make_event", "simulate"]

JET_R = 0.4


@dataclass
class JetEvent:
    """One simulated event: particles, primary vertex, jets, crossings (truth), fired pixels and clusters."""

    particles: pd.DataFrame
    vertex: np.ndarray  # (3,) mm
    jets: pd.DataFrame  # pt, eta, phi (smeared: the "calorimeter" jets)
    crossings: pd.DataFrame  # every outward crossing of a ladder by a charged particle (helix_crossings)
    pixels: pd.DataFrame  # fired pixels, with the index of their cluster
    clusters: pd.DataFrame
    event_id: int = 0


_BANNER_SHOWN = False


@contextmanager
def _no_banner():
    """FastJet's C++ prints a banner on stdout at its first clustering (no binding turns it off): send file
    descriptor 1 to /dev/null that once, so that ``--json`` output stays one JSON object."""
    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
        _BANNER_SHOWN = True


def _import_fastjet():
    try:
        import fastjet
    except ImportError:
        raise GeneratorError("DeepCore's jets need FastJet: pip install fastjet (the scikit-hep wheels)") from None
    return fastjet


def find_jets(particles: pd.DataFrame, rng: np.random.Generator, pt_min: float = 1000.0,
              eta_max: float = 1.4, smear: bool = True) -> pd.DataFrame:
    """Anti-kt R = 0.4 jets of the final-state particles, smeared as calorimeter jets, then selected."""
    fastjet = _import_fastjet()
    px, py, pz = (particles[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    m = _masses(particles)
    e = np.sqrt(px ** 2 + py ** 2 + pz ** 2 + m ** 2)
    inputs = [fastjet.PseudoJet(*vals) for vals in zip(px.tolist(), py.tolist(), pz.tolist(), e.tolist(),
                                                       strict=True)]
    with _no_banner():
        sequence = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R))
        jets = sequence.inclusive_jets(0.5 * pt_min)
    pt = np.array([j.pt() for j in jets])
    eta = np.array([j.eta() for j in jets])
    phi = np.array([j.phi_std() for j in jets])
    if smear and len(pt):
        res = np.hypot(1.0 / np.sqrt(pt), 0.05)
        pt = pt * (1 + res * rng.normal(size=len(pt)))
        eta = eta + 0.01 * rng.normal(size=len(pt))
        phi = np.angle(np.exp(1j * (phi + 0.01 * rng.normal(size=len(pt)))))
    keep = (pt > pt_min) & (np.abs(eta) < eta_max)
    return pd.DataFrame({"pt": pt[keep], "eta": eta[keep], "phi": phi[keep]}).reset_index(drop=True)


def _masses(particles: pd.DataFrame) -> np.ndarray:
    """Rest masses [GeV] from the PDG ids (particle's table, looked up once per id); 0 where unknown."""
    if "particle_type" not in particles:
        return np.full(len(particles), 0.13957)
    from particle import Particle

    pdg = particles["particle_type"].to_numpy(np.int64)
    out = np.zeros(len(pdg))
    for code in np.unique(pdg):
        try:
            mass = Particle.from_pdgid(int(code)).mass
        except Exception:  # noqa: BLE001 - an id the table lacks keeps mass 0
            mass = None
        out[pdg == code] = (mass or 0.0) / 1000.0
    return out


def primary_vertex(particles: pd.DataFrame) -> np.ndarray:
    """The vertex most particles of the hard collision come from."""
    hard = particles[(particles["particle_id"].to_numpy() >> 32) == 0]
    verts = hard[["vx", "vy", "vz"]].to_numpy(np.float64)
    uniq, counts = np.unique(verts, axis=0, return_counts=True)
    return uniq[np.argmax(counts)]


def simulate(particles: pd.DataFrame, jets: pd.DataFrame, vertex: np.ndarray, rng: np.random.Generator,
             det: PixelBarrel | None = None, event_id: int = 0) -> JetEvent:
    """Cross the barrel, digitize and cluster: a JetEvent from particles, jets and a vertex."""
    det = det or PixelBarrel()
    crossings = helix_crossings(det, particles)
    pixels = digitize(det, crossings, rng)
    clusters, labels = cluster(det, pixels)
    pixels["cluster"] = labels
    return JetEvent(particles, np.asarray(vertex, dtype=np.float64), jets, crossings, pixels, clusters, event_id)


def make_event(seed: int, pthat_min: float = 1800.0, pthat_max: float = 2400.0, pileup: float = 0,
               jet_pt_min: float = 1000.0, jet_eta_max: float = 1.4, det: PixelBarrel | None = None) -> JetEvent:
    """One Pythia dijet event (pT-hat range settable), its jets and its simulated pixel barrel."""
    from ..generate.pythia import dijets

    rng = as_rng(seed)
    particles = dijets(pthat_min=pthat_min, pthat_max=pthat_max, pileup=pileup, seed=rng)
    jets = find_jets(particles, rng, jet_pt_min, jet_eta_max)
    return simulate(particles, jets, primary_vertex(particles), rng, det, event_id=int(seed))

"""Shared fixtures: a tiny hand-made event with truth, simulated muons (a folder of
three events; one gun event) and pions, and the real TrackML files when
they are there."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepreco.event import Event
from deepreco.generate import particle_gun
from deepreco.io import write_event
from deepreco.simulate import simulate_event

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trackml"


@pytest.fixture
def shared_trackml() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"the real TrackML files are not at {SHARED} (the ../shared folder beside the project)")
    return SHARED


def make_tiny_event(n_particles: int = 3, hits_per_particle: int = 5, n_noise: int = 3, seed: int = 1) -> Event:
    """Straight tracks from the origin through barrel layers at r = 30, 70, 115, 170, 260 ... mm, plus noise."""
    rng = np.random.default_rng(seed)
    radii = np.array([32.0, 72.0, 116.0, 172.0, 260.0, 360.0, 500.0, 660.0])[:hits_per_particle]
    rows, truth, particles = [], [], []
    hit_id = 1
    for p in range(n_particles):
        pid = 1000 + p
        phi, eta, pt = rng.uniform(-np.pi, np.pi), rng.uniform(-1, 1), 0.5 + 1.5 * p
        pz = pt * np.sinh(eta)
        particles.append((pid, 0.0, 0.0, 0.0, pt * np.cos(phi), pt * np.sin(phi), pz, 1, hits_per_particle))
        for layer, r in enumerate(radii):
            x, y, z = r * np.cos(phi), r * np.sin(phi), r * np.sinh(eta)
            rows.append((hit_id, x, y, z, 8, 2 * (layer + 1), 1))
            truth.append((hit_id, pid, x, y, z, pt * np.cos(phi), pt * np.sin(phi), pz))
            hit_id += 1
    for _ in range(n_noise):
        x, y, z = rng.uniform(-100, 100, 3)
        rows.append((hit_id, x, y, z, 8, 2, 1))
        truth.append((hit_id, 0, x, y, z, 0.0, 0.0, 0.0))
        hit_id += 1
    hits = pd.DataFrame(rows, columns=["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"])
    truth = pd.DataFrame(truth, columns=["hit_id", "particle_id", "tx", "ty", "tz", "tpx", "tpy", "tpz"])
    particles = pd.DataFrame(particles, columns=["particle_id", "vx", "vy", "vz", "px", "py", "pz", "q", "nhits"])
    return Event(hits=hits, particles=particles, truth=truth, event_id=42)


@pytest.fixture
def tiny_event() -> Event:
    return make_tiny_event()


@pytest.fixture(scope="module")
def muons(tmp_path_factory):
    """Three events of 20 muons of both charges, pT 1-20 GeV, |eta| < 2.5, vertices spread 0.1 / 20 mm (the
    track fits' tests, with and without ACTS); one simulation per test module."""
    from deepreco.io import read_event
    from deepreco.simulate.dataset import simulate_dataset

    out = tmp_path_factory.mktemp("muons")
    simulate_dataset("gun", 3, out, seed=11, format="parquet", n=20, pdg=(13, -13), pt=(1.0, 20.0),
                     vertex_sigma=(0.1, 20.0))
    return [read_event(p) for p in sorted(out.glob("*-hits.parquet"))]


@pytest.fixture(scope="module")
def ttbar_folder(tmp_path_factory):
    """One simulated ttbar event (no pile-up, seed 3) with its cells, in a folder (the serving clients' tests)."""
    from typer.testing import CliRunner

    from deepreco.cli import app

    out = tmp_path_factory.mktemp("ttbar")
    result = CliRunner().invoke(app, ["simulate", "-g", "ttbar", "-n", "1", "--seed", "3", "--pileup", "0",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def muon_gun():
    """One event: 20 muons of 1 to 10 GeV from the origin, with the real noise rates of TrackML events."""
    return simulate_event(particle_gun(n=20, pdg=13, pt=(1.0, 10.0), seed=5), seed=5, event_id=1)


@pytest.fixture(scope="module")
def pion_set(tmp_path_factory):
    """Two small events of 60 pions each, written as a dataset to train on (about 100 training windows)."""
    folder = tmp_path_factory.mktemp("pions")
    for i in range(2):
        particles = particle_gun(n=60, pdg=211, pt=(1.0, 10.0), seed=100 + i)
        write_event(simulate_event(particles, seed=100 + i, event_id=i, noise_fraction=0.0), folder)
    return folder

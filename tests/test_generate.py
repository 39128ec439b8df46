"""Generators: every one gives the TrackML particle table, reproducibly from a seed; bad particle lists fail."""

import importlib.util
import sys
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from deepreco.errors import DeepRecoError, EventError, FormatError, MissingFileError
from deepreco.event import PARTICLES_DTYPES
from deepreco.generate import (
    GENERATORS,
    PARTICLE_COLUMNS,
    GeneratorError,
    check_particles,
    dijets,
    generate,
    particle_gun,
    pdg_charge,
    trackml_particles,
    ttbar_with_pileup,
)
from deepreco.generate.table import pt_eta

SHIPPED = resources.files("deepreco") / "data" / "event000001001-particles.csv.gz"
HAS_PYTHIA = importlib.util.find_spec("pythia8mc") is not None
needs_pythia = pytest.mark.skipif(not HAS_PYTHIA, reason="pythia8mc is not installed "
                                  "(pip install 'pythia8mc==8.317.2' to run the Pythia tests)")


def assert_particle_table(table: pd.DataFrame) -> None:
    assert tuple(table.columns[:len(PARTICLE_COLUMNS)]) == PARTICLE_COLUMNS
    for col, dtype in {**PARTICLES_DTYPES, "particle_type": "int32"}.items():
        assert table[col].dtype == np.dtype(dtype), col
    assert table["particle_id"].is_unique and (table["particle_id"] > 0).all()
    assert table["q"].isin([-1, 0, 1]).all()
    assert np.isfinite(table[["vx", "vy", "vz", "px", "py", "pz"]].to_numpy()).all()


def csv_bytes(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False).encode()


# --- particle gun --------------------------------------------------------------------------------------------

def test_gun_counts_ranges_and_charges():
    gun = particle_gun(2000, pdg=[13, -13, 211, 22], pt=(1.0, 5.0), eta=(-1.0, 2.0), phi=(0.0, 1.0), seed=7)
    assert_particle_table(gun)
    assert len(gun) == 2000 and (gun["nhits"] == 0).all()
    pt, eta = pt_eta(gun["px"], gun["py"], gun["pz"])
    phi = np.arctan2(gun["py"], gun["px"])
    assert pt.min() >= 1.0 - 1e-5 and pt.max() <= 5.0 + 1e-5
    assert eta.min() >= -1.0 - 1e-5 and eta.max() <= 2.0 + 1e-5
    assert phi.min() >= -1e-6 and phi.max() <= 1.0 + 1e-6
    expected = {13: -1, -13: 1, 211: 1, 22: 0}
    assert (gun["q"].to_numpy() == gun["particle_type"].map(expected).to_numpy()).all()
    assert set(gun["particle_type"]) == set(expected)  # every species drawn
    assert (gun[["vx", "vy", "vz"]].to_numpy() == 0).all()  # from the origin unless asked otherwise


def test_gun_fixed_values_and_vertex_spread():
    gun = particle_gun(500, pdg=-11, pt=10.0, eta=0.0, vertex_sigma=(0.015, 55.0), seed=1)
    assert (gun["q"] == 1).all() and (gun["particle_type"] == -11).all()
    assert np.allclose(np.hypot(gun["px"], gun["py"]), 10.0) and np.allclose(gun["pz"], 0.0)
    assert 40 < gun["vz"].std() < 70 and gun["vx"].std() < 0.03


def test_gun_is_reproducible_from_a_seed_or_a_generator():
    a = particle_gun(100, pdg=[211, -211], seed=3)
    assert csv_bytes(a) == csv_bytes(particle_gun(100, pdg=[211, -211], seed=3))
    assert csv_bytes(a) == csv_bytes(particle_gun(100, pdg=[211, -211], seed=np.random.default_rng(3)))
    assert csv_bytes(a) != csv_bytes(particle_gun(100, pdg=[211, -211], seed=4))


def test_gun_rejects_what_it_cannot_make():
    with pytest.raises(GeneratorError, match="unknown PDG id 99999999"):
        particle_gun(1, pdg=99999999)
    with pytest.raises(GeneratorError, match="charge 2"):
        particle_gun(1, pdg=2224)  # Delta++
    with pytest.raises(GeneratorError, match="min <= max"):
        particle_gun(1, eta=(2.0, 1.0))
    with pytest.raises(GeneratorError, match="whole number"):
        particle_gun(-1)
    assert pdg_charge([11, -11, 2212, 2112, 310]).tolist() == [-1, 1, 1, 0, 0]


# --- real TrackML particle lists -----------------------------------------------------------------------------

def test_trackml_shipped_list_is_taken_as_it_is():
    table = trackml_particles(SHIPPED)
    raw = pd.read_csv(SHIPPED)
    assert_particle_table(table)
    assert len(table) == len(raw) == 8915
    assert (table["particle_type"] == 0).all()  # the challenge's files have no species: 0 = unknown
    assert (table["particle_id"].to_numpy() == raw["particle_id"].to_numpy()).all()
    assert (table["nhits"].to_numpy() == raw["nhits"].to_numpy()).all()  # the real counts, kept for comparison
    assert np.allclose(table["px"], raw["px"], rtol=1e-6)


def test_trackml_real_event_1003(shared_trackml):
    path = shared_trackml / "train" / "event000001003-particles.csv.gz"
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    table = generate("trackml", seed=1, particles=path)  # the seed is ignored: the list is fixed
    assert_particle_table(table)
    assert len(table) == 10261 and set(table["q"]) == {-1, 1}


@pytest.mark.parametrize("fault, message", [
    (lambda df: df.drop(columns="q"), "missing column q"),
    (lambda df: df.assign(px=df["px"].where(df.index != 3)), "column px has 1 NaN"),
    (lambda df: df.assign(q=df["q"].where(df.index != 5, 2)), r"outside -1, 0, 1 \(q = 2 at row 6\)"),
    (lambda df: df.assign(particle_id=df["particle_id"].where(df.index != 2, df["particle_id"][1])),
     "duplicated particle_id"),
])
def test_bad_particle_lists_name_the_file_and_the_fault(tmp_path, fault, message):
    good = pd.read_csv(SHIPPED, nrows=20)
    path = tmp_path / "event000000001-particles.csv"
    fault(good).to_csv(path, index=False)
    with pytest.raises(FormatError, match=message) as info:
        trackml_particles(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    # The same list in memory is a bad table rather than a bad file.
    with pytest.raises(EventError, match=message):
        check_particles(fault(good), "my list")


def test_missing_particle_file():
    with pytest.raises(MissingFileError, match="no-such-particles.csv"):
        trackml_particles("no-such-particles.csv")


# --- the registry --------------------------------------------------------------------------------------------

def test_registry_names_and_options():
    assert set(GENERATORS) == {"ttbar", "dijet", "gun", "trackml"}
    table = generate("gun", seed=2, n=4, pdg=[13])
    assert csv_bytes(table) == csv_bytes(particle_gun(4, pdg=[13], seed=2))
    with pytest.raises(GeneratorError, match="unknown generator 'zprime'"):
        generate("zprime", seed=1)
    with pytest.raises(GeneratorError, match="has no option colour"):
        generate("gun", seed=1, colour="red")


def test_pythia_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # makes `import pythia8mc` fail
    with pytest.raises(DeepRecoError, match=r"pip install 'pythia8mc==8\.317\.2'"):
        ttbar_with_pileup(mu=0, seed=1, energy_tev=13.0)  # a configuration not yet initialised


# --- Pythia --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ttbar():
    if not HAS_PYTHIA:
        pytest.skip("pythia8mc is not installed (pip install 'pythia8mc==8.317.2' to run the Pythia tests)")
    return ttbar_with_pileup(mu=2, seed=4, ancestry=True)  # seed 4 draws 3 pile-up collisions


@needs_pythia
def test_ttbar_with_small_pileup(ttbar):
    assert_particle_table(ttbar[list(PARTICLE_COLUMNS)])
    charged = ttbar[ttbar["q"] != 0]
    pt, eta = pt_eta(charged["px"], charged["py"], charged["pz"])
    assert len(charged) > 100
    assert pt.min() >= 0.05 - 1e-6 and np.abs(eta).max() <= 4.5 + 1e-6  # the default cuts
    assert 0.2 < np.median(pt) < 1.5 and pt.max() > 10  # soft hadrons, and hard ones from the tops
    assert set(np.abs(ttbar["particle_type"])) >= {211, 321, 2212, 22}
    assert not ttbar["particle_type"].abs().isin([12, 14, 16]).any()  # neutrinos never reach a tracker
    # Collision 0 is the hard process; each collision has its own vertex in the luminous region.
    per_collision = ttbar.groupby("collision")[["vx", "vy", "vz"]].median()
    assert sorted(per_collision.index) == list(range(len(per_collision))) and len(per_collision) >= 2
    assert np.ptp(per_collision["vz"]) > 1.0 and per_collision[["vx", "vy"]].abs().max().max() < 0.1
    assert ((ttbar["particle_id"].to_numpy() >> 32) == ttbar["collision"].to_numpy()).all()
    # Pythia decays K0S, Lambda, b and c hadrons at displaced vertices.
    assert (np.hypot(ttbar["vx"], ttbar["vy"]) > 1.0).any()
    # Leptons of the W and the decay products of the b hadrons trace back to the tops.
    from_top = ttbar[ttbar["from_top"]]
    assert len(from_top) > 0 and (from_top["collision"] == 0).all()


@needs_pythia
def test_ttbar_same_seed_same_table(ttbar):
    again = ttbar_with_pileup(mu=2, seed=4, ancestry=True)
    assert csv_bytes(again) == csv_bytes(ttbar)
    other = generate("ttbar", seed=5, pileup=2)
    assert list(other.columns) == list(PARTICLE_COLUMNS) and csv_bytes(other) != csv_bytes(ttbar)


@needs_pythia
def test_dijets_carry_teV_of_transverse_momentum():
    table = dijets(seed=5)
    assert_particle_table(table)
    pt, _ = pt_eta(table["px"], table["py"], table["pz"])
    assert pt.sum() > 1500  # two jets of pT-hat >= 1.8 TeV
    assert pt.max() > 50  # dense cores: some very hard hadrons
    assert csv_bytes(dijets(seed=5)) == csv_bytes(table)

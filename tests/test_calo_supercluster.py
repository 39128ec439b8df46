"""Superclusters (issue 23): an electron's bremsstrahlung photons joined to it, by the helix's window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepreco.calo import limit
from deepreco.calo.clue import EM, HAD, MIP
from deepreco.calo.guns import fixed
from deepreco.calo.methods import get_method
from deepreco.calo.metrics import particle_table
from deepreco.calo.simulate import simulate
from deepreco.calo.supercluster import Superclustered, Window, assign, superclusters
from deepreco.errors import DeepRecoError


def _table(rows):
    table = pd.DataFrame(rows, columns=["cluster_id", "energy", "kind", "eta", "phi", "em", "side"])
    return table.assign(track=table["kind"] == MIP)


def test_the_window_takes_the_photons_along_the_arc_and_nothing_else():
    w = Window()
    # a 5 GeV electron at eta 2: its photons may lie up to 0.15 B z / pz = 0.37 rad away (+ 0.02)
    assert w.half_phi(np.array([5.0]), np.array([2.0]), 3200.0)[0] == pytest.approx(
        0.02 + 0.15 * 3.8 * 3.2 / (5.0 * np.tanh(2.0)))
    table = _table([
        (10, 5.0, EM, 2.00, 0.00, 1.00, 1),    # the seed
        (11, 2.0, EM, 1.98, -0.30, 1.00, 1),   # a photon on its arc: joins
        (12, 1.5, EM, 2.00, 0.60, 1.00, 1),    # beyond the window in phi
        (13, 1.5, EM, 2.30, 0.05, 1.00, 1),    # beyond the band in eta (0.05 + 0.6 dphi^2)
        (14, 1.5, HAD, 2.00, 0.10, 0.30, 1),   # a hadron's cluster is not a member
        (15, 1.5, EM, -2.00, 0.10, 1.00, -1),  # the other endcap
        (16, 1.5, MIP, 2.00, -0.05, 1.00, 1),  # a muon's track: never taken
        (17, 8.0, EM, 1.70, 2.50, 1.00, 1),    # another seed, far away, larger: alone
    ])
    into = assign(table, w)
    assert into.tolist() == [0, 0, 2, 3, 4, 5, 6, 7]
    # no seed below seed_energy (1 GeV): the electron's cluster at 0.9 GeV takes nothing
    assert assign(table.assign(energy=[0.9, 0.4, 0.3, 0.3, 0.3, 0.3, 0.3, 8]), w).tolist() == list(range(8))
    # a seed takes smaller clusters only: the photon larger than the electron takes it
    assert assign(table.assign(energy=[2.0, 5.0, 1, 1, 1, 1, 1, 8]), w).tolist()[:2] == [1, 1]


def test_superclusters_keep_the_energy_and_label_every_hit_of_the_members():
    event = simulate(fixed([11], [5.0], [2.2], [0.4]), seed=3)
    ht, cl = get_method("clue").reconstruct(event)
    sht, scl = superclusters(event.hits, ht, cl)
    assert scl["energy"].sum() == pytest.approx(cl["energy"].sum())
    assert scl["n_clusters"].sum() == len(cl) and set(scl["cluster_id"]) <= set(cl["cluster_id"])
    assert set(sht.loc[sht["cluster_id"] >= 0, "cluster_id"]) == set(scl["cluster_id"])
    assert ((ht["cluster_id"] >= 0) == (sht["cluster_id"] >= 0)).all()  # no hit gained or lost
    empty = cl.iloc[:0]
    assert len(superclusters(event.hits, ht.assign(cluster_id=-1), empty)[1]) == 0


def test_an_electron_clue_loses_to_its_brems_is_found_in_its_supercluster():
    # benchmarks/calo_electrons.py's 5th 5 GeV electron (seed 11): its photons carried most of its energy and
    # landed about 0.5 rad away in phi; CLUE's largest cluster holds under half the deposit
    rng = np.random.default_rng([11, 11, 5000, 4])
    table = fixed([11 * (1 if rng.uniform() < 0.5 else -1)], [5.0], [rng.uniform(1.7, 2.8)],
                  [rng.uniform(-np.pi, np.pi)])
    event = limit.primaries(simulate(table, seed=rng))
    plain = particle_table(event, *get_method("clue").reconstruct(event)).set_index("particle_id")
    method = get_method("clue+sc")
    assert isinstance(method, Superclustered) and method.name == "clue+sc"
    sc = particle_table(event, *method.reconstruct(event)).set_index("particle_id")
    assert not plain.loc[1, "found"] and sc.loc[1, "found"]
    assert 0.85 < sc.loc[1, "response"] < 1.15  # each piece calibrated on its own, then summed


def test_superclusters_by_name_and_bad_settings_are_one_line():
    assert get_method("clue+drn+sc").name == "clue+drn+sc"
    with pytest.raises(DeepRecoError, match=r"only \+drn, then \+sc"):
        get_method("clue+sc+drn")
    with pytest.raises(DeepRecoError, match="phi_scale must be a number >= 0"):
        Window(phi_scale=-1.0).check()
    with pytest.raises(DeepRecoError, match="eta_base must be a number >= 0"):
        Superclustered(get_method("clue"), Window(eta_base=float("nan")))

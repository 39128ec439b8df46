"""The resolution limit (perfect clustering), the primary-particle truth, and isolated particles (issue 23)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from deepreco.calo import limit
from deepreco.calo.evaluate import DEFAULT_METHODS
from deepreco.calo.event import CaloEvent
from deepreco.calo.guns import fixed
from deepreco.calo.methods import get_method
from deepreco.calo.metrics import particle_table, robust_resolution
from deepreco.calo.simulate import simulate


def hand_made_event() -> CaloEvent:
    """An electron (1) alone in hits 1-5, its brem photon (5) alone in hits 7-11, both in hit 6 (3 GeV the
    electron's, 1 the photon's), a noise hit 12. Electron 8 GeV at the face, its photon 2 GeV: the shot
    electron had 10 GeV; deposits 4 + 3 = 7 and 1 + 1.5 = 2.5 GeV."""
    hits = pd.DataFrame({"hit_id": np.arange(1, 13), "x": np.arange(12) * 5.0, "y": 0.0, "z": 3300.0, "layer": 3,
                         "energy": [0.8] * 5 + [4.0] + [0.3] * 5 + [0.01], "time": 0.0})
    fractions = pd.DataFrame({"hit_id": [1, 2, 3, 4, 5, 6, 6, 7, 8, 9, 10, 11],
                              "particle_id": [1] * 6 + [5] * 6, "fraction": [1.0] * 5 + [0.75, 0.25] + [1.0] * 5,
                              "energy": [0.8] * 5 + [3.0, 1.0] + [0.3] * 5})
    truth = pd.DataFrame({"hit_id": np.arange(1, 13), "particle_id": [1] * 6 + [5] * 5 + [0],
                          "fraction": [1.0] * 5 + [0.75] + [1.0] * 6, "hit_class": [1] * 11 + [0]})
    particles = pd.DataFrame({"particle_id": [1, 5], "parent_id": [0, 1], "pdg": [11, 22], "kind": [1, 1],
                              "energy": [8.0, 2.0], "x": [0.0, 40], "y": 0.0, "z": 3200.0, "eta": 2.0, "phi": 0.0,
                              "deposited": [7.0, 2.5], "n_hits": [6, 6]})
    return CaloEvent(hits=hits, truth=truth, fractions=fractions, particles=particles, event_id=7)


def test_primaries_give_the_shot_particle_its_secondaries_hits_energy_and_deposit():
    event = limit.primaries(hand_made_event())
    p = event.particles.set_index("particle_id")
    assert list(p.index) == [1]
    assert p.loc[1, "energy"] == pytest.approx(10.0)  # 8 at the face + the 2 it radiated in the tracker
    assert p.loc[1, "deposited"] == pytest.approx(9.5)  # every hit of both, noise left out
    assert p.loc[1, "n_hits"] == 11
    f = event.fractions
    assert f.loc[f["hit_id"] == 6, "fraction"].tolist() == pytest.approx([1.0])
    assert event.truth["particle_id"].tolist() == [1] * 11 + [0]


def test_a_perfect_clustering_of_the_hand_made_event_finds_the_electron_with_its_deposit():
    event = limit.primaries(hand_made_event())
    ht = pd.DataFrame({"hit_id": np.arange(1, 13), "cluster_id": [0] * 11 + [-1]})
    cl = pd.DataFrame({"cluster_id": [0], "energy": [9.5], "kind": [1], "n_hits": [11], "x": [25.0], "y": [0.0],
                       "z": [3300.0]})
    p = particle_table(event, ht, cl)
    assert p["found"].tolist() == [True]
    assert p["response"].tolist() == pytest.approx([0.95])
    perfect = limit.perfect_particles([event])
    assert perfect["response"].tolist() == pytest.approx([0.95])
    # the boundary-crossing truth splits it: the one cluster matches the electron, its photon counts as lost
    p0 = particle_table(hand_made_event(), ht, cl)
    assert p0.set_index("particle_id")["found"].to_dict() == {1: True, 5: False}


def test_the_limit_table_is_the_robust_width_per_species_and_energy_and_the_fit_finds_known_terms():
    rng = np.random.default_rng(3)
    rows = []
    for e in (5.0, 50.0):
        resp = 0.9 * (1 + rng.normal(0, 0.2 / np.sqrt(e), 400))
        rows.append(pd.DataFrame({"species": "photon", "energy": e, "n_hits": 10, "response": resp}))
    table = limit.limit_table(pd.concat(rows))
    for e, g in zip((5.0, 50.0), rows, strict=True):
        scale, res = robust_resolution(g["response"].to_numpy())
        got = table[table["energy"] == e].iloc[0]
        assert (got["scale"], got["resolution"], got["n"]) == pytest.approx((scale, res, 400))
        assert got["resolution"] == pytest.approx(0.2 / np.sqrt(e), rel=0.15)
    energies = np.array([2.0, 5, 10, 20, 50, 100, 200])
    fit = limit.fit_resolution(energies, limit.resolution_model(energies, 0.21, 0.012, 0.3), np.full(7, 1000))
    assert (fit["a"], fit["b"], fit["c"]) == pytest.approx((0.21, 0.012, 0.3), rel=1e-3)
    fit2 = limit.fit_resolution(energies, limit.resolution_model(energies, 0.5, 0.05), np.full(7, 100),
                                noise_term=False)
    assert (fit2["a"], fit2["b"], fit2["c"]) == pytest.approx((0.5, 0.05, 0.0), abs=1e-4)


def test_the_limit_on_simulated_photons_follows_the_stochastic_term():
    events = limit.isolated_events(species=(22,), energies=(10.0, 100.0), n_per=30, seed=1)
    table = limit.limit_table(limit.perfect_particles(events)).set_index("energy")
    assert table["n"].tolist() == [30, 30]
    assert table["scale"].to_numpy() == pytest.approx([1.0, 1.0], abs=0.05)
    # sampling a = 0.22 makes the Gaussian width 0.22 / sqrt(E); the robust width is near it
    assert 0.03 < table.loc[10.0, "resolution"] < 0.1
    assert table.loc[100.0, "resolution"] < table.loc[10.0, "resolution"]


def test_isolated_judge_divides_by_the_perfect_clustering_of_the_same_events_by_default():
    from deepreco.calo import isolated

    events = limit.isolated_events(species=(22,), energies=(20.0,), n_per=6, seed=4)
    _, per_energy = isolated.judge(["clue"], events)
    own = limit.limit_table(limit.perfect_particles(events))
    row = per_energy.iloc[0]
    assert row["limit"] == pytest.approx(own["resolution"].iloc[0])
    assert row["ratio"] == pytest.approx(row["resolution"] / row["limit"])
    other = own.assign(resolution=2 * own["resolution"])
    _, given = isolated.judge(["clue"], events, other)
    assert given["ratio"].iloc[0] == pytest.approx(row["ratio"] / 2)


@pytest.fixture(scope="module")
def photon_50():
    return limit.isolated_events(species=(22,), energies=(50.0,), n_per=1, seed=2)[0]


# every method as get_method gives it, calibrated (calo_calibration.json): the shipped DRN alone read this photon
# 44.9 GeV after CLUE and 41.6 after GravNet (benchmarks/results/calo_drn.md: why)
@pytest.mark.parametrize("name", [*DEFAULT_METHODS, "garnet"])
def test_every_method_finds_one_cluster_of_an_isolated_50_gev_photon_within_10_percent(name, photon_50):
    torch.set_num_threads(1)
    ht, cl = get_method(name).reconstruct(photon_50)
    big = cl[cl["energy"] >= 1.0]
    assert len(big) == 1
    assert big["energy"].iloc[0] == pytest.approx(50.0, rel=0.10)
    assert particle_table(photon_50, ht, cl)["found"].tolist() == [True]



@pytest.mark.parametrize("name", ["gravnet", "garnet"])
def test_a_networks_cluster_energy_is_the_sum_of_its_hits_unless_the_energy_head_is_asked_for(name, photon_50):
    # the energy head's correction made the isolated particles' resolution worse (benchmarks/results/calo_head.md)
    torch.set_num_threads(1)
    method = get_method(name, calibrated=False)
    ht, cl = method.reconstruct(photon_50)
    sums = photon_50.hits["energy"].groupby(ht["cluster_id"].to_numpy()).sum()
    assert cl["energy"].to_numpy() == pytest.approx(sums.reindex(cl["cluster_id"]).to_numpy())
    method.energy_head = True
    _, with_head = method.reconstruct(photon_50)
    assert with_head["cluster_id"].tolist() == cl["cluster_id"].tolist()
    assert not np.allclose(with_head["energy"].to_numpy(), cl["energy"].to_numpy(), rtol=1e-3)

# ---- calibration (deepreco.calo.calibration) -------------------------------------------------------------------

def test_a_calibration_learned_on_a_few_pions_brings_clues_response_to_one_on_other_pions():
    from deepreco.calo import calibration

    clue = get_method("clue", calibrated=False)
    learn = calibration.responses(clue, calibration.calibration_events(16, seed=5, energy=(10, 100), species=(211,)))
    curves = calibration.fit_curves(learn, n_bins=2, min_per_bin=4)
    assert set(curves) == {"2"}  # CLUE calls a pion's shower hadronic
    judge = calibration.responses(clue, calibration.calibration_events(16, seed=6, energy=(10, 100), species=(211,)))
    judge = judge[judge["kind"] == 2]
    before = np.median(judge["reco_energy"] / judge["energy"])
    after = np.median(calibration.apply(curves, judge["reco_energy"], judge["kind"]) / judge["energy"])
    assert before < 0.7  # h/e, and CLUE's cluster holds only part of a pion's shower
    # 13 pions learned, 12 judged, and CLUE's pion responses spread from 0.3 to 0.95: near 1, not at it
    assert abs(after - 1) < 0.15 and abs(after - 1) < abs(before - 1) / 3


def test_the_calibration_curve_holds_its_ratio_beyond_its_ends_and_leaves_other_kinds_alone():
    from deepreco.calo import calibration

    curves = {"2": {"log_reco": np.log([6.0, 60.0]).tolist(), "log_true": np.log([10.0, 80.0]).tolist(), "n": 9}}
    out = calibration.apply(curves, np.array([3.0, 6.0, 60.0, 600.0, 6.0, 0.0]), np.array([2, 2, 2, 2, 1, 2]))
    assert out == pytest.approx([5.0, 10.0, 80.0, 800.0, 6.0, 0.0])


def test_get_method_applies_the_calibration_file_beside_the_models_by_default(tmp_path, photon_50):
    import json

    from deepreco.calo import calibration
    from deepreco.errors import FormatError

    doubled = {"1": {"log_reco": [0.0, 6.0], "log_true": [np.log(2), 6 + np.log(2)], "n": 20}}
    (tmp_path / calibration.FILE).write_text(json.dumps({"version": 1, "methods": {"clue": {"curves": doubled}}}))
    raw = get_method("clue", tmp_path, calibrated=False)
    cal = get_method("clue", tmp_path)
    assert cal.name == "clue" and raw.name == "clue"
    (_, c0), (_, c1) = raw.reconstruct(photon_50), cal.reconstruct(photon_50)
    em = (c0["kind"] == 1).to_numpy()
    assert em.any() and c1["energy"].to_numpy()[em] == pytest.approx(2 * c0["energy"].to_numpy()[em])
    (tmp_path / calibration.FILE).write_text("{not json")
    with pytest.raises(FormatError, match="not a calorimeter calibration file"):
        get_method("clue", tmp_path)


def test_clue_links_the_pieces_of_a_pions_shower():
    from deepreco.calo.methods import ClueMethod

    events = limit.isolated_events(species=(211,), energies=(100.0,), n_per=6, seed=9)
    for i in (2, 5):  # 100 GeV pions CLUE cut into 5 clusters, none with half of the deposit
        apart, linked = (particle_table(events[i], *ClueMethod(link_mm=mm).reconstruct(events[i])).iloc[0]
                         for mm in (0.0, 150.0))
        assert not apart["found"] and linked["found"]
        assert linked["reco_energy"] > 0.8 * linked["deposited"]


def test_clue_links_a_pions_late_em_piece_and_leaves_a_photons_shower_alone():
    from deepreco.calo.clue import start_layers
    from deepreco.calo.methods import ClueMethod

    # the first layer by which 5 % of a cluster's energy is in: cluster 7 has 0.04 in layer 2, 0.5 in layer 9
    starts = start_layers(np.array([7, 7, 7, 3]), np.array([2, 9, 12, 0]), np.array([0.04, 0.5, 0.46, 1.0]))
    assert starts.to_dict() == {3: 0, 7: 9}
    for i in (6, 14):  # 20 GeV pions of the tuning events whose pi0 showered deep in CE-E, apart from the rest
        event = limit.one_particle(211, 20.0, np.random.default_rng([21, 211, 20000, i]))
        apart, linked = (particle_table(event, *ClueMethod(link_late_layer=n).reconstruct(event)).iloc[0]
                         for n in (0, 8))
        assert not apart["found"] and linked["found"]
    assert ClueMethod().link_late_layer == 8
    # a photon beside a pion starts at the front: the pion's cluster does not take it
    event = simulate(fixed([22, 211], [20.0, 20.0], [2.0, 2.0], [0.30, 0.36]), seed=4)
    found = particle_table(event, *ClueMethod().reconstruct(event))
    assert found["found"].all() and len(found) == 2


@pytest.mark.parametrize("name", ["gravnet", "edgeconv", "garnet"])
def test_the_networks_find_a_2_gev_muon_with_clues_mip_pass(name):
    torch.set_num_threads(1)
    event = limit.isolated_events(species=(13,), energies=(2.0,), n_per=1, seed=5)[0]
    method = get_method(name)
    assert method.mip_layers == 10
    ht, cl = method.reconstruct(event)
    row = particle_table(event, ht, cl).iloc[0]
    assert row["found"] and row["reco_energy"] > 0.5 * row["deposited"]
    method.mip_layers = 0  # GravNet and DGCNN alone gather under half of the muon's deposit; GarNet alone finds it
    assert particle_table(event, *method.reconstruct(event)).iloc[0]["found"] == (name == "garnet")


def test_a_floor_on_the_pieces_energy_keeps_small_pieces_apart():
    from deepreco.calo.methods import ClueMethod

    event = limit.isolated_events(species=(211,), energies=(100.0,), n_per=6, seed=9)[2]
    n = {f: len(ClueMethod(link_min_fraction=f).reconstruct(event)[1]) for f in (0.0, 0.2, 1.0)}
    apart = len(ClueMethod(link_mm=0.0).reconstruct(event)[1])
    # 0: every piece within reach is linked; 1: none is (no piece is as large as the cluster taking it)
    assert n[1.0] == apart and n[0.0] < apart and n[0.0] <= n[0.2] <= n[1.0]


def test_the_mix_source_draws_gun_events_isolated_particles_and_close_pairs_with_the_shot_particles_truth():
    from deepreco.calo.geometry import DEFAULT
    from deepreco.calo.simulate import MIX_ISOLATED_ENERGY, MIX_PAIR_MM, _mix_table, gun_event

    tables = [_mix_table(4, (5.0, 100.0), 0.3, (1.7, 2.8), DEFAULT, np.random.default_rng([9, i])) for i in range(60)]
    sizes = np.array([len(t) for t in tables])
    assert (sizes == 1).sum() > 8 and (sizes == 2).sum() > 8 and (sizes == 4).sum() > 12  # 0.3 / 0.3 / 0.4
    for t in tables:
        energy = np.sqrt(t.px ** 2 + t.py ** 2 + t.pz ** 2)
        if len(t) == 1:  # isolated: any of the benchmark's kinds, 2-200 GeV
            assert MIX_ISOLATED_ENERGY[0] * 0.99 <= energy.iloc[0] <= MIX_ISOLATED_ENERGY[1]
        if len(t) == 2 and (t.particle_type == 22).all():  # two photons: their distance at the face
            at_face = DEFAULT.z_front / t.pz.to_numpy()
            x, y = t.px.to_numpy() * at_face, t.py.to_numpy() * at_face
            assert MIX_PAIR_MM[0] - 1e-6 <= np.hypot(x[0] - x[1], y[0] - y[1]) <= MIX_PAIR_MM[1] + 1e-6
    event = gun_event(4, seed=9, source="mix")
    assert (event.particles["parent_id"] == 0).all()  # secondaries folded into the particle that was shot
    assert event.truth["particle_id"].isin([0, *event.particles["particle_id"]]).all()
    pd.testing.assert_frame_equal(gun_event(4, seed=9, source="mix").hits, event.hits)  # (seed, index) alone

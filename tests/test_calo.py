"""The calorimeter chain: showers, truth, CLUE, object condensation, the networks, metrics, bad input, CLI."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from deepreco.calo.clue import ClueClustering, clue, clue_layers
from deepreco.calo.condensation import condensation_loss, condense
from deepreco.calo.event import CaloEvent
from deepreco.calo.features import N_FEATURES, hit_features
from deepreco.calo.geometry import DEFAULT
from deepreco.calo.guns import PILEUP_ID_OFFSET, TAU_MASS, fixed, pair, taus, with_pileup
from deepreco.calo.methods import ClueMethod, OCClustering, get_method
from deepreco.calo.metrics import event_counts, particle_table
from deepreco.calo.modelfile import load_model, save_model
from deepreco.calo.models import DRN, GarNetConv, GravNetOC
from deepreco.calo.showers import EM, HAD, MIP, Axis, ShowerConfig, em_shower, hadron_shower, mip_track
from deepreco.calo.simulate import simulate, simulate_gun
from deepreco.calo.train import batch_clusters, cluster_samples, clustering_task, drn_task
from deepreco.errors import EventError, FormatError, MissingFileError
from deepreco.modelfile import load
from deepreco.training import fit, settings_for

torch.set_num_threads(1)


def _axis(eta=2.2, phi=0.3):
    theta = 2 * np.arctan(np.exp(-eta))
    d = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    return Axis(d * DEFAULT.z_front / d[2], d, 10.7)


@pytest.fixture(scope="module")
def small_event():
    return simulate(fixed([22, 211, 11], [20, 30, 15], [2.0, 2.1, 2.05], [0.3, 0.4, 0.25]), seed=5)


# --- showers ---------------------------------------------------------------------------------------------------

def test_em_shower_integrates_to_its_energy_within_the_sampling_fluctuation():
    rng = np.random.default_rng(1)
    cfg, energy, n = ShowerConfig(), 20.0, 60
    sums = np.array([em_shower(energy, _axis(), 0.0, 1, DEFAULT, cfg, rng)["energy"].sum() for _ in range(n)])
    sigma = cfg.a_em * np.sqrt(energy)  # the stochastic term: sigma_E = a sqrt(E)
    assert abs(sums.mean() - energy) < 3 * sigma / np.sqrt(n) + 0.01 * energy  # 1 %: leakage past 26 X0 + CE-H
    assert 0.7 * sigma < sums.std() < 1.4 * sigma


def test_em_profile_peaks_near_ln_y_and_the_core_holds_the_energy():
    rng = np.random.default_rng(2)
    spots = em_shower(50.0, _axis(), 0.0, 1, DEFAULT, ShowerConfig(), rng)
    depth = DEFAULT["depth_x0"][spots["layer"]]
    # Grindhammer: T = ln y - 0.858 (the maximum, 7.9 X0), alpha = 0.21 + 0.524 ln y; the gamma distribution's
    # mean is T alpha / (alpha - 1), about 9.9 X0; the sensor sits half a layer behind the absorber's middle
    lny = np.log(50.0 / 0.008)
    t_max, alpha = lny - 0.858, 0.21 + (0.492 + 2.38 / 74) * lny
    assert abs(np.average(depth, weights=spots["energy"]) - 0.46 - t_max * alpha / (alpha - 1)) < 2.0
    axis_xy = _axis().at_layers(DEFAULT, spots["layer"])
    r = np.hypot(spots["x"] - axis_xy[:, 0], spots["y"] - axis_xy[:, 1])
    assert np.sum(spots["energy"][r < 2 * DEFAULT.moliere_mm]) > 0.85 * spots["energy"].sum()


def test_hadron_and_mip_deposits():
    rng = np.random.default_rng(3)
    cfg = ShowerConfig()
    vis = [sum(p["energy"].sum() for p in hadron_shower(50.0, _axis(), 1, DEFAULT, cfg, rng)) for _ in range(20)]
    # non-compensating: between h/e and 1 of the energy, with large fluctuations
    assert 0.6 * 50 < np.mean(vis) < 0.95 * 50 and np.std(vis) / np.mean(vis) > 0.08
    mip = mip_track(_axis(), np.arange(DEFAULT.n_layers), 1, DEFAULT, rng)
    cos = abs(_axis().direction[2])
    assert np.all(mip["cls"] == MIP)
    assert np.allclose(np.median(mip["energy"] / DEFAULT["mip"] * cos), 1.0, atol=0.1)


def test_truth_fractions_classes_and_particles(small_event):
    ev = small_event
    sums = ev.fractions.groupby("hit_id")["fraction"].sum()
    assert np.allclose(sums, 1.0)
    assert set(ev.truth["hit_class"].unique()) <= {0, 1, 2, 3}
    noise = ev.truth["particle_id"] == 0
    assert (ev.truth.loc[noise, "hit_class"] == 0).all()
    assert {EM, HAD} <= set(ev.truth["hit_class"].unique())
    assert ev.truth["particle_id"].isin([0, *ev.particles["particle_id"]]).all()
    # a particle's deposited energy is its share of the hits
    p = ev.particles.set_index("particle_id")
    e = ev.hits.set_index("hit_id")["energy"]
    dep = (ev.fractions["fraction"] * e.loc[ev.fractions["hit_id"]].to_numpy()).groupby(
        ev.fractions["particle_id"].to_numpy()).sum()
    assert np.allclose(dep.reindex(p.index).fillna(0), p["deposited"])


def test_brem_photon_is_its_own_particle_above_the_threshold():
    table = pair(60.0, species=(11, 11), energy=(80, 80), seed=4)
    hard = simulate(table, seed=7, tracker_x0=1.0, brem_threshold=1.0, noise=False)
    soft = simulate(table, seed=7, tracker_x0=1.0, brem_threshold=1e9, noise=False)
    brems = hard.particles[hard.particles["parent_id"] > 0]
    assert len(brems) > 0 and (brems["pdg"] == 22).all() and (brems["energy"] >= 1.0).all()
    assert (soft.particles["parent_id"] == 0).all()
    # folded in, the photons' energy belongs to the electrons
    assert np.isclose(soft.particles["energy"].sum(), hard.particles["energy"].sum())


def test_an_electron_made_just_before_the_face_reaches_it_without_radiating():
    # pile-up holds late decays: an electron made within the last tenth before either endcap's face (it crashed
    # the tracker-brem draw once) reaches the face whole
    from deepreco.calo.geometry import DEFAULT

    table = fixed([11, 11], [20.0, 20.0], [2.2, -2.2], [0.3, 0.3])
    along = 0.95 * DEFAULT.z_front / table["pz"].abs()  # on the particle's line from the origin
    table["vx"], table["vy"], table["vz"] = table["px"] * along, table["py"] * along, table["pz"] * along
    ev = simulate(table, seed=1, tracker_x0=1.0, brem_threshold=0.1, noise=False)
    assert ev.particles["energy"].tolist() == pytest.approx([20.0, 20.0], rel=1e-6)
    assert (ev.particles["parent_id"] == 0).all()


def test_a_muons_folded_photons_are_not_counted_twice_in_its_energy():
    # a muon radiates its photons inside the calorimeter, out of its own energy: folded into it (a threshold no
    # photon reaches), they add hits and deposit but not energy
    table = fixed([13], [200.0], [2.2], [0.3])
    deposits = []
    for seed in range(6):
        ev = simulate(table, seed=seed, brem_threshold=1e9, noise=False)
        assert ev.particles["energy"].tolist() == pytest.approx([200.0])
        deposits.append(float(ev.particles["deposited"].iloc[0]))
    assert max(deposits) > 5.0 > min(deposits)  # some seeds did radiate (a bare MIP track leaves about 2 GeV)


def test_same_seed_same_event():
    a, b = simulate_gun(n=2, seed=11), simulate_gun(n=2, seed=11)
    pd.testing.assert_frame_equal(a.hits, b.hits)


# --- sources: Pythia 8 taus and pile-up ---------------------------------------------------------------------------

def _per_tau(table):
    return table.groupby(table["particle_id"].to_numpy() >> 16)


def test_taus_decay_into_hadrons_only_when_hadronic_is_asked():
    pytest.importorskip("pythia8mc")
    hadronic = taus(40, energy=(30, 30), seed=1)
    # a hadronic decay has one neutrino, the tau's; a leptonic one adds the lepton's antineutrino
    for _, products in _per_tau(hadronic):
        pdg = products["particle_type"].abs()
        assert (pdg == 16).sum() == 1 and not pdg.isin([12, 13, 14]).any()
        assert pdg.isin([211, 321, 111, 22, 130, 310]).any()
    assert _per_tau(hadronic).ngroups == 40
    every = taus(40, energy=(30, 30), hadronic=False, seed=1)
    n_leptonic = sum(int(p["particle_type"].abs().isin([12, 14]).any()) for _, p in _per_tau(every))
    assert 5 <= n_leptonic <= 25  # 35 % of 40
    event = simulate(hadronic[hadronic["particle_id"].to_numpy() >> 16 < 3], seed=2)
    # each product is its own particle, as a gun's particles are; brem photons come on top
    primaries = event.particles[event.particles["parent_id"] == 0]
    assert len(primaries) > 3 and primaries["particle_id"].isin(hadronic["particle_id"]).all()


def test_tau_products_add_up_to_the_tau_and_neutrinos_make_no_hits():
    pytest.importorskip("pythia8mc")
    from deepreco.calo.guns import _DECAYER
    from deepreco.generate.pythia import pythia_instance

    data = pythia_instance(_DECAYER).particleData
    table = taus(6, energy=(40, 40), eta=(2.0, 2.5), spread=0.2, hadronic=False, seed=3)
    mom = table[["px", "py", "pz"]].to_numpy(np.float64)
    mass = np.array([data.m0(int(i)) for i in table["particle_type"]])
    table = table.assign(e=np.sqrt((mom ** 2).sum(1) + mass ** 2), px=mom[:, 0], py=mom[:, 1], pz=mom[:, 2])
    for _, products in _per_tau(table):
        assert np.isclose(products["e"].sum(), 40.0, rtol=1e-5)
        p = products[["px", "py", "pz"]].sum().to_numpy()
        assert np.isclose(np.linalg.norm(p), np.sqrt(40.0 ** 2 - TAU_MASS ** 2), rtol=1e-5)
        assert 1.8 < np.arcsinh(p[2] / np.hypot(p[0], p[1])) < 2.7
    event = simulate(table, seed=4)
    neutrinos = table.loc[table["particle_type"].abs().isin([12, 14, 16]), "particle_id"]
    assert len(neutrinos) >= 6
    assert not event.particles["particle_id"].isin(neutrinos).any()
    assert not event.fractions["particle_id"].isin(neutrinos).any()
    # the visible energy reaches the calorimeter: within the tracker's radiation and the thresholds
    visible = table.loc[~table["particle_id"].isin(neutrinos), "e"].sum()
    assert 0.9 * visible < event.particles["energy"].sum() <= visible + 1e-6


def test_pileup_overlay_adds_hits_and_particles_with_unique_ids():
    pytest.importorskip("pythia8mc")
    alone = simulate_gun(n=2, source="tau", seed=5)
    piled = simulate_gun(n=2, source="tau", pileup=5, seed=5)
    assert len(piled.hits) > 2 * len(alone.hits) and len(piled.particles) > 2 * len(alone.particles)
    ids = piled.particles["particle_id"]
    assert ids.is_unique and (ids >= PILEUP_ID_OFFSET).sum() > 20
    assert piled.truth["particle_id"].isin([0, *ids]).all()
    assert (piled.hits["z"] < 0).any()  # pile-up reaches both endcaps
    signal = taus(2, seed=6)
    both = with_pileup(signal, 3, seed=7)
    assert both["particle_id"].is_unique and len(both) > len(signal)
    pd.testing.assert_frame_equal(both.iloc[:len(signal)].drop(columns="vt"), signal)
    assert (both.iloc[:len(signal)]["vt"] == 0).all()  # the hard interaction at t = 0, the pile-up spread
    assert with_pileup(signal, 0) is signal


def test_bad_source_values_are_clear_errors():
    with pytest.raises(EventError, match="pile-up mu must be a finite number >= 0, got -1"):
        simulate_gun(n=1, pileup=-1, seed=1)
    with pytest.raises(EventError, match="pile-up mu"):
        with_pileup(fixed([22], [10], [2.0], [0.0]), float("nan"))
    for eta in ((1.0, 2.0), (2.0, 3.5), (2.5, 2.0), (-2.5, -2.0)):
        with pytest.raises(EventError, match="outside the endcap"):
            simulate_gun(n=1, source="tau", eta=eta, seed=1)
    with pytest.raises(EventError, match="unknown particle source 'muons'; expected one of gun, tau, mix"):
        simulate_gun(source="muons")
    with pytest.raises(EventError, match="species is for the gun source"):
        simulate_gun(source="tau", species="e")
    with pytest.raises(EventError, match="species is for the gun source; the mix source draws its own"):
        simulate_gun(source="mix", species="e")
    with pytest.raises(EventError, match="the tau mass"):
        taus(1, energy=(1.0, 10.0))


def test_cli_sources_and_their_errors():
    pytest.importorskip("pythia8mc")
    from deepreco.calo.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--events", "1", "--methods", "clue", "--source", "tau", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["source"] == "tau" and out["pileup"] == 0 and out["hits_per_event"] > 100
    for args, code, message in ((["--pileup", "-2"], 2, "error: Invalid value for '--pileup': -2 is not in the range"),
                                (["--source", "kaon"], 1, "error: unknown particle source 'kaon'")):
        res = runner.invoke(app, ["evaluate", "--events", "1", "--methods", "clue", *args])
        assert res.exit_code == code and res.output.startswith(message) and res.output.count("\n") == 1, res.output


# --- CLUE ------------------------------------------------------------------------------------------------------

def test_clue_on_a_hand_made_point_cloud():
    # two blobs with a clear peak each, a low follower between them, one lone low point far away
    pts = np.array([[0, 0], [0.6, 0], [0, 0.6], [-0.5, -0.3],
                    [5, 5], [5.5, 5], [5, 5.4],
                    [2.3, 2.3],
                    [20, 20]], dtype=float)
    w = np.array([5, 1, 1, 1, 4, 1, 1, 0.2, 0.5])
    labels = clue(pts, w, dc=1.0, rhoc=2.0, outlier_delta_factor=2.0)
    assert labels[:4].tolist() == [labels[0]] * 4
    assert labels[4:7].tolist() == [labels[4]] * 3 and labels[4] != labels[0]
    assert labels[8] == -1  # outlier: low density, nothing within d_m
    assert labels[7] == -1  # 3.3 from both peaks > d_m = 2: an outlier too
    assert len(set(labels[labels >= 0])) == 2


def test_clue_per_layer_keeps_layers_apart():
    x = np.array([0, 0.5, 0, 0.5])
    y = np.zeros(4)
    layer = np.array([0, 0, 1, 1])
    labels = clue_layers(x, y, layer, np.array([3, 1, 3, 1.0]), dc_per_layer=np.ones(2), rhoc=2.0)
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2]


def test_clue_finds_two_separate_photons():
    ev = simulate(pair(300.0, species=(22, 22), energy=(30, 30), seed=2), seed=3, tracker_x0=0.0)
    hit_table, clusters = ClueMethod().reconstruct(ev)
    p = particle_table(ev, hit_table, clusters)
    assert p["found"].all()
    assert np.all(np.abs(p["response"] - 1) < 0.15)


# --- object condensation -----------------------------------------------------------------------------------------

def test_condensation_loss_against_a_hand_computation():
    # object 1: hits 0, 1; object 2: hit 2; noise: hit 3.  q = arctanh(beta)^2 + q_min.
    beta = torch.tensor([0.9, 0.5, 0.8, 0.2])
    x = torch.tensor([[0.0, 0.0], [0.3, 0.4], [0.6, 0.8], [3.0, 0.0]])
    oid = torch.tensor([1, 1, 2, 0])
    q = np.arctanh(np.array([0.9, 0.5, 0.8, 0.2])) ** 2 + 0.1
    # alphas: hit 0 (object 1), hit 2 (object 2). Distances: d(1,0) = 0.5, d(2,0) = 1.0, d(3,0) = 3,
    # d(0,2) = 1.0, d(1,2) = 0.5, d(3,2) = sqrt(2.4^2 + 0.8^2) > 1.
    att1 = (q[0] * q[0] * 0 + q[1] * q[0] * 0.25) / 2
    att2 = 0.0
    rep1 = (q[2] * q[0] * max(0, 1 - 1.0) + q[3] * q[0] * 0) / 2
    rep2 = (q[0] * q[2] * 0 + q[1] * q[2] * 0.5 + q[3] * q[2] * 0) / 3
    out = condensation_loss(beta, x, oid, q_min=0.1, s_b=1.0)
    assert np.isclose(float(out["attractive"]), (att1 + att2) / 2, rtol=1e-5)
    assert np.isclose(float(out["repulsive"]), (rep1 + rep2) / 2, rtol=1e-5)
    assert np.isclose(float(out["coward"]), ((1 - 0.9) + (1 - 0.8)) / 2, rtol=1e-5)
    assert np.isclose(float(out["noise"]), 0.2, rtol=1e-5)
    paper = condensation_loss(beta, x, oid, q_min=0.1, normalisation="paper")
    assert np.isclose(float(paper["attractive"]), q[1] * q[0] * 0.25 / 4, rtol=1e-5)


def test_condensation_loss_matches_the_object_condensation_package():
    ref = pytest.importorskip("object_condensation.pytorch.losses")
    g = torch.Generator().manual_seed(0)
    beta = torch.rand(300, generator=g) * 0.98 + 0.01
    x = torch.randn(300, 3, generator=g)
    oid = torch.randint(0, 8, (300,), generator=g)
    ours = condensation_loss(beta, x, oid, q_min=0.1)
    theirs = ref.condensation_loss(beta=beta, x=x, object_id=oid, q_min=0.1)
    for key in ("attractive", "repulsive", "coward", "noise"):
        assert torch.isclose(ours[key], theirs[key], rtol=1e-5), key


def test_condensation_inference():
    beta = np.array([0.9, 0.2, 0.85, 0.4, 0.05])
    coords = np.array([[0, 0], [0.1, 0.1], [0.2, 0], [5, 5], [5.1, 5]], dtype=float)
    labels, alphas = condense(beta, coords, t_beta=0.3, t_d=0.5)
    assert labels.tolist() == [0, 0, 0, 1, 1] and alphas.tolist() == [0, 3]


# --- networks train ---------------------------------------------------------------------------------------------

TINY = {"gravnet": {"hidden": 16, "blocks": 2, "k": 8}, "edgeconv": {"hidden": 16, "layers": 2, "k": 8},
        "garnet": {"hidden": 16, "blocks": 2, "aggregators": 4, "prop_dim": 8},
        "drn": {"hidden": 16, "k": 4}}


def _settings(name, **change):
    """Settings of a tiny network: the shipped file's, with small sizes and given thresholds (no tuning)."""
    extra = {"t_beta": 0.3, "t_d": 0.5} if name != "drn" else {}
    return settings_for(f"calo-{name}", overrides={"network": TINY[name], **extra, **change})


@pytest.mark.parametrize("name", ["gravnet", "edgeconv", "garnet"])
def test_clustering_network_trains_on_the_trainer_and_its_loss_falls(name, small_event):
    settings = _settings(name, max_steps=40, learning_rate=3e-3)
    r = fit(f"calo-{name}", settings, None, progress=False,
            make_task=lambda s: clustering_task(name, s, [small_event] * 5, [small_event]))
    losses = r["train_loss"]  # the event five times an epoch, validated on it after each epoch
    assert r["steps"] == 40 and len(losses) == 8 and len(r["val_loss"]) == 8
    assert losses[-1] < 0.8 * losses[0] and r["val_loss"][-1] < r["val_loss"][0]
    hit_table, clusters = OCClustering(r["net"], 0.3, 0.5).reconstruct(small_event)
    assert len(hit_table) == len(small_event.hits) and set(hit_table.columns) >= {"hit_id", "cluster_id", "hit_class"}


def test_garnet_layer_of_a_batch_is_its_events_alone_and_its_aggregation_the_formula():
    torch.manual_seed(3)
    conv = GarNetConv(6, 5, aggregators=3, prop_dim=4)
    a, b = torch.randn(40, 6), torch.randn(25, 6)
    both = conv(torch.cat([a, b]), torch.cat([torch.zeros(40, dtype=torch.long), torch.ones(25, dtype=torch.long)]))
    assert torch.allclose(both, torch.cat([conv(a), conv(b)]), atol=1e-5)
    # the layer against its formula written out with the (hits, aggregators, features) tensor of one event
    v = torch.exp(-conv.lin_d(a) ** 2)
    msg = v[:, :, None] * conv.lin_f(a)[:, None, :]
    g = torch.cat([msg.mean(0), msg.amax(0)], dim=1)  # (S, 2P)
    back = torch.stack([conv.back[s] @ g[s] for s in range(3)])  # W_a g_a
    assert torch.allclose(conv(a), conv.lin_x(a) + v @ back, atol=1e-5)
    # nothing the layer computes for a hit depends on where the hit sits in the event (no neighbour search)
    perm = torch.randperm(40)
    assert torch.allclose(conv(a[perm]), conv(a)[perm], atol=1e-5)


def test_drn_trains_on_the_trainer_and_its_loss_falls(small_event):
    samples = cluster_samples(small_event) * 4
    r = fit("calo-drn", _settings("drn", max_steps=40, batch_size=4, learning_rate=5e-3), None, progress=False,
            make_task=lambda s: drn_task(s, samples, samples[:3]))
    assert r["steps"] == 40 and r["train_loss"][-1] < 0.7 * r["train_loss"][0]
    x, batch, log_e, _ = batch_clusters(samples[:3])
    assert r["net"](x, batch, log_e).shape == (3,)


def test_the_drn_may_learn_from_isolated_particles_over_a_wider_energy_range():
    from deepreco.calo.train import drn_samples, isolated_samples

    samples = isolated_samples(2, seed=0)  # 2 each of photon, electron, pion
    assert len(samples) == 6
    e_true = np.array([s[2] for s in samples])
    assert ((e_true > 1.5) & (e_true < 250)).all()
    ratio = e_true / np.array([s[1] for s in samples])
    assert ratio[4:].min() > 1.15 > ratio[:4].max()  # a pion's deposit reads h/e low; EM showers near 1
    with_them, _ = drn_samples({"isolated": 2, "seed": 0, "cluster_sources": []}, [])
    assert [s[2] for s in with_them] == e_true.tolist()


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    """A GravNet training of seconds: 3 events, 2 validation events, 10 steps, a checkpoint every 2 steps."""
    path = tmp_path_factory.mktemp("calo_config") / "gravnet.yaml"
    path.write_text(json.dumps({"events": 3, "val_events": 2, "network": TINY["gravnet"], "max_steps": 10,
                                "checkpoint_every_steps": 2}))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def uninterrupted(tiny_config, tmp_path_factory):
    """``deepreco calo train`` with the tiny settings (one validation event, an option over the file's two), start to
    end; the thresholds tuned after training."""
    from deepreco.calo.cli import app

    out = tmp_path_factory.mktemp("calo_one")
    res = CliRunner().invoke(app, ["train", "--models", "gravnet", "--config", str(tiny_config), "--out", str(out),
                                   "--val-events", "1"])
    assert res.exit_code == 0, res.output
    return out / "calo_gravnet.pt", json.loads(res.stdout)


def test_calo_train_writes_a_model_with_its_settings_record_and_thresholds(uninterrupted, small_event):
    path, report = uninterrupted
    mf = load(path, "calo-gravnet")
    assert mf.settings["network"] == TINY["gravnet"] and mf.settings["events"] == 3 and mf.settings["seed"] == 0
    assert mf.settings["val_events"] == 1 and mf.record["n_val"] == 1
    assert mf.record["steps"] == 10 and len(mf.record["train_loss"]) == 4  # 3 events an epoch: 3 + 3 + 3 + 1
    assert mf.record["tuning"]["t_beta"] == mf.config["t_beta"] == report["models"]["gravnet"]["t_beta"]
    model, info = load_model(path, kinds=("gravnet",))
    assert info["t_d"] == mf.config["t_d"] and model.config["hidden"] == 16
    hit_table, _ = get_method("gravnet", path.parent).reconstruct(small_event)
    assert len(hit_table) == len(small_event.hits)


def _env(threads=1):
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": str(threads)}


def test_a_killed_calo_training_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(uninterrupted, tiny_config,
                                                                                        tmp_path):
    def train(out, kill_at=None):
        """The tiny training in a fresh process on one thread; SIGKILLed before step ``kill_at``."""
        script = textwrap.dedent(f"""
            import os, signal, torch
            import lightning.pytorch as pl
            from deepreco.training import fit, settings_for
            torch.set_num_threads(1)

            class Kill(pl.Callback):
                def on_train_batch_start(self, trainer, module, batch, batch_idx):
                    if trainer.global_step == {kill_at!r}:
                        os.kill(os.getpid(), signal.SIGKILL)

            fit("calo-gravnet", settings_for("calo-gravnet", {str(tiny_config)!r}), {str(out)!r}, progress=False,
                callbacks=[Kill()])
        """)
        return subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, text=True,
                              timeout=180)

    # the reference: the same training uninterrupted, in a fresh process too (this process's state, its thread
    # count and what earlier tests loaded, may move the losses' last bits)
    reference = tmp_path / "reference" / "calo_gravnet.pt"
    reference.parent.mkdir()
    proc = train(reference)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "calo_gravnet.pt"
    proc = train(out, kill_at=8)  # SIGKILL after step 8, in the middle of the third epoch
    assert proc.returncode == -9 and not out.exists(), proc.stderr[-2000:]
    ckpts = out.with_name("calo_gravnet.pt.checkpoints")
    # 3 steps an epoch; a step checkpoint every 2 steps, but none on an epoch's last step (the epoch's follows)
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch000.ckpt", "epoch001.ckpt", "last.ckpt",
                                                       "step000002.ckpt", "step000004.ckpt", "step000008.ckpt"]
    res = subprocess.run([sys.executable, "-m", "deepreco", "calo", "train", "--out", str(tmp_path), "--resume",
                          str(ckpts / "last.ckpt"), "--threads", "1"], env=_env(), capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    resumed, ref = load(out, "calo-gravnet"), load(reference, "calo-gravnet")
    assert resumed.record["train_loss"] == ref.record["train_loss"]
    assert resumed.record["val_loss"] == ref.record["val_loss"]
    assert all(torch.equal(resumed.weights["net"][k], w) for k, w in ref.weights["net"].items())
    assert resumed.config == ref.config  # the same thresholds chosen after training
    whole = load(uninterrupted[0], "calo-gravnet")
    # and from an epoch's end, or a step in the middle of an earlier epoch, with the run's settings
    for name in ("epoch000.ckpt", "step000004.ckpt"):
        again = fit("calo-gravnet", whole.settings, tmp_path / "again.pt", resume=ckpts / name, progress=False,
                    checkpoints=False)
        assert again["train_loss"] == whole.record["train_loss"] and again["steps"] == 10, name
        assert all(torch.equal(again["net"].state_dict()[k], w) for k, w in whole.weights["net"].items()), name


def test_calo_training_is_the_same_twice_on_two_threads(small_event):
    # with two threads the backward of the neighbour gathers (x[idx]) added in any order: weights differed by
    # 1e-7 and more from run to run; the trainer runs with deterministic kernels
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = [fit("calo-gravnet", _settings("gravnet", max_steps=6), None, progress=False,
                    make_task=lambda s: clustering_task("gravnet", s, [small_event], []))["net"] for _ in range(2)]
    finally:
        torch.set_num_threads(previous)
    assert all(torch.equal(a, b) for a, b in zip(runs[0].state_dict().values(), runs[1].state_dict().values(),
                                                 strict=True))


def test_calo_train_bad_settings_give_one_line(tmp_path, tiny_config):
    from deepreco.calo.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    lstm_like = tmp_path / "other.ckpt"
    torch.save({"deepreco": {"kind": "lstm", "settings": {}}, "state_dict": {}}, lstm_like)
    cases = [(["--models", "gravnet", "--config", str(bad)], "bad.yaml: unknown calo-gravnet setting epochz"),
             (["--config", str(tiny_config)], "--config holds the settings of one network"),
             (["--models", "kmeans"], "unknown calorimeter network 'kmeans'"),
             (["--models", "gravnet,drn,gravnet"], "--models names gravnet more than once"),
             (["--resume", str(lstm_like)], "a checkpoint of a 'lstm' training, not of a calorimeter network")]
    for args, message in cases:
        res = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "out"), *args])
        assert res.exit_code == 1 and res.stderr.startswith("error: ") and message in res.stderr, res.output
        assert res.stderr.strip().count("\n") == 0, res.stderr
        assert not (tmp_path / "out").exists()


# --- metrics ----------------------------------------------------------------------------------------------------

def test_truth_clustering_is_perfectly_efficient(small_event):
    ev = small_event
    hit_table = pd.DataFrame({"hit_id": ev.hits["hit_id"], "cluster_id": np.where(
        ev.truth["particle_id"] > 0, ev.truth["particle_id"], -1)})
    e = ev.hits["energy"].groupby(hit_table["cluster_id"]).sum().drop(-1, errors="ignore")
    clusters = pd.DataFrame({"cluster_id": e.index, "energy": e.to_numpy()})
    counts = event_counts(ev, hit_table, clusters, ev.truth["hit_class"].to_numpy())
    assert counts["found"] == counts["particles"] > 0 and counts["fakes"] == 0
    assert counts["class_correct"] == counts["hits"]


# --- bad input --------------------------------------------------------------------------------------------------

def _hits(**change):
    hits = pd.DataFrame({"hit_id": [1, 2], "x": [400.0, 410], "y": [0.0, 0], "z": [3212.0, 3212],
                         "layer": [0, 0], "energy": [0.1, 0.2], "time": [11.0, 11]})
    for k, v in change.items():
        hits[k] = v
    return hits


def test_nan_or_negative_energy_is_an_event_error():
    with pytest.raises(EventError, match="NaN"):
        CaloEvent(_hits(energy=[np.nan, 0.1]))
    with pytest.raises(EventError, match="negative energy"):
        CaloEvent(_hits(energy=[-0.1, 0.1]))
    with pytest.raises(EventError, match="lack column"):
        CaloEvent(_hits().drop(columns="energy"))


def test_empty_event_gives_no_clusters():
    empty = CaloEvent(_hits().iloc[:0])
    for method in (ClueMethod(), OCClustering(GravNetOC(N_FEATURES, hidden=16, blocks=1), 0.3, 0.5)):
        hit_table, clusters = method.reconstruct(empty)
        assert len(hit_table) == 0 and len(clusters) == 0
    assert hit_features(empty.hits).shape == (0, N_FEATURES)


def test_a_model_file_of_another_kind_is_a_format_error(tmp_path):
    path = save_model(DRN(N_FEATURES + 1, hidden=8), tmp_path / "calo_gravnet.pt")
    with pytest.raises(FormatError, match="calo_gravnet.pt: a model of kind 'calo-drn', expected kind 'calo-gravnet'"):
        load_model(path, kinds=("gravnet",))
    with pytest.raises(FormatError, match="kind 'calo-drn'"):
        get_method("gravnet", models_dir=tmp_path)
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    with pytest.raises(FormatError):
        load_model(junk)
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(FormatError, match="other.pt: not a deepreco model file"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(MissingFileError):
        load_model(tmp_path / "absent.pt")


# --- command line -----------------------------------------------------------------------------------------------

def test_cli_evaluate_json_and_bad_method(tmp_path):
    from deepreco.calo.cli import app

    model = GravNetOC(N_FEATURES, hidden=16, blocks=1)
    save_model(model, tmp_path / "calo_gravnet.pt", {"t_beta": 0.9, "t_d": 0.5})
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--events", "2", "--seed", "3", "--json", "--methods", "clue,gravnet",
                              "--models-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for name in ("clue", "gravnet"):
        assert {"efficiency", "fake_rate", "energy_resolution", "seconds_per_event"} <= set(out["methods"][name])
    res = runner.invoke(app, ["evaluate", "--events", "1", "--methods", "kmeans"])
    assert res.exit_code == 1 and "unknown calorimeter method 'kmeans'" in res.output


def test_clue_parameters_are_the_same_on_every_event():
    a = ClueClustering()
    assert a.dc_em == 13.0 and a.kappa == 9.0  # CMSSW's HGCAL values: d_c 1.3 cm, rho_c = 9 sigma_noise


def test_shipped_models_load_and_cluster(small_event):
    from deepreco.calo.modelfile import SHIPPED

    if not (SHIPPED / "calo_gravnet.pt").exists():
        pytest.skip("no shipped calorimeter models")
    for name in ("gravnet", "edgeconv", "gravnet+drn"):
        hit_table, clusters = get_method(name).reconstruct(small_event)
        assert len(hit_table) == len(small_event.hits) and len(clusters) > 0
        assert np.isfinite(clusters["energy"]).all()

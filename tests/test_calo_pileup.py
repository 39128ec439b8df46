"""Taus under pile-up (`deepreco.calo.pileup`): the events, the hard-particle figures, the pile-up's time spread,
and a network trained a few steps on pile-up events."""

import numpy as np
import pandas as pd
import pytest
import torch

from deepreco.calo import pileup
from deepreco.calo.clue import finish
from deepreco.calo.geometry import DEFAULT
from deepreco.calo.guns import PILEUP_ID_OFFSET, PILEUP_TIME_SPREAD_NS, fixed, with_pileup
from deepreco.calo.methods import get_method
from deepreco.calo.propagate import to_face
from deepreco.calo.train import clustering_task
from deepreco.training import fit, settings_for

pytest.importorskip("pythia8mc")
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def piled():
    return pileup.tau_event(0, seed=3, mu=4)


def _clustered(event, labels):
    return finish(event.hits, np.asarray(labels, dtype=np.int64), DEFAULT)


def test_tau_events_have_taus_in_both_endcaps_and_the_same_taus_at_every_mu(piled):
    table = pileup.tau_table(8, seed=1)
    assert (table["particle_id"] < PILEUP_ID_OFFSET).all() and table["particle_id"].is_unique
    visible = table[~table["particle_type"].abs().isin([12, 14, 16])]
    assert (visible["pz"] > 0).any() and (visible["pz"] < 0).any()
    alone = pileup.tau_event(0, seed=3, mu=0)
    hard = pileup.is_hard(piled.particles)
    assert hard.sum() < len(piled.particles) and (piled.particles.loc[~hard, "particle_id"] >= PILEUP_ID_OFFSET).all()
    primaries = piled.particles[hard & (piled.particles["parent_id"] == 0)]
    assert set(primaries["particle_id"]) == set(alone.particles.loc[alone.particles["parent_id"] == 0, "particle_id"])
    assert len(piled.hits) > len(alone.hits)


def test_pileup_collisions_are_spread_in_time_and_the_hits_follow():
    signal = fixed([22], [20.0], [2.0], [0.1])
    both = with_pileup(signal, 60, seed=2)
    assert (both.loc[both["particle_id"] < PILEUP_ID_OFFSET, "vt"] == 0).all()
    per_collision = both[both["particle_id"] >= PILEUP_ID_OFFSET].groupby(both["particle_id"] // PILEUP_ID_OFFSET)["vt"]
    assert (per_collision.nunique() == 1).all()  # one time a collision
    assert 0.6 * PILEUP_TIME_SPREAD_NS < per_collision.first().std() < 1.4 * PILEUP_TIME_SPREAD_NS
    late = signal.assign(vt=1.5)
    t_on_time = to_face(signal, DEFAULT, np.random.default_rng(0))["t0"].to_numpy()
    t_late = to_face(late, DEFAULT, np.random.default_rng(0))["t0"].to_numpy()
    np.testing.assert_allclose(t_late - t_on_time, 1.5)


def test_hard_figures_of_the_perfect_clustering_and_of_one_big_cluster(piled):
    truth = piled.truth["particle_id"].to_numpy()
    ids, labels = np.unique(truth, return_inverse=True)
    labels = np.where(truth > 0, labels, -1)  # each particle's own hits a cluster, noise in none
    counts, table = pileup.hard_figures(piled, *_clustered(piled, labels))
    expected = piled.particles[pileup.is_hard(piled.particles) & (piled.particles["energy"] >= 10)
                               & (piled.particles["n_hits"] >= 5)]
    assert counts["hard"] == len(expected) >= 2 and counts["found"] == counts["hard"] and counts["fakes"] == 0
    assert table["response"].between(0.5, 1.5).all()  # calibrated hits: a particle's own hits hold its energy
    big = piled.particles.set_index("particle_id")["energy"]
    assert counts["pileup_clusters"] <= int((big[big.index >= PILEUP_ID_OFFSET] >= 5).sum())
    one = np.zeros(len(piled.hits), dtype=np.int64)  # every hit in one cluster: no hard particle has half of it
    counts, table = pileup.hard_figures(piled, *_clustered(piled, one))
    assert counts == {"hard": len(expected), "found": 0, "big_clusters": 1, "fakes": 1, "pileup_clusters": 0}
    s = pileup.summarise([counts, counts], table)
    assert s["efficiency"] == 0 and s["fakes_per_event"] == 1 and np.isnan(s["resolution"])


def test_a_drn_method_on_the_replayed_clusters_equals_the_method_run_alone(piled):
    runs = pileup.run_methods(["clue", "clue+drn"], piled)
    alone = get_method("clue+drn").reconstruct(piled)
    _, cl = alone
    replayed = runs["clue+drn"]["particles"].set_index("particle_id")["reco_energy"]
    direct = pileup.hard_figures(piled, *alone)[1].set_index("particle_id")["reco_energy"]
    pd.testing.assert_series_equal(replayed, direct)
    assert runs["clue+drn"]["seconds"] > runs["clue"]["seconds"] and len(cl) > 0


def test_evaluate_gives_a_row_per_mu_and_method():
    summary, per_event = pileup.evaluate(["clue"], mus=(0, 3), n_events=1, seed=3)
    assert summary[["mu", "method"]].values.tolist() == [[0, "clue"], [3, "clue"]]
    assert summary.loc[1, "hits_per_event"] > summary.loc[0, "hits_per_event"]
    assert (summary["hard_particles"] >= 2).all() and summary["efficiency"].between(0, 1).all()
    assert len(per_event) == 2 and (per_event["seconds"] > 0).all()


def test_a_network_trained_on_tau_and_pileup_events_a_few_steps_lowers_its_loss(piled):
    settings = settings_for("calo-gravnet", overrides={"network": {"hidden": 16, "blocks": 2, "k": 8},
                                                       "t_beta": 0.3, "t_d": 0.5, "max_steps": 30,
                                                       "learning_rate": 3e-3, "seed": 0})
    torch.manual_seed(0)
    r = fit("calo-gravnet", settings, None, progress=False,
            make_task=lambda s: clustering_task("gravnet", s, [piled] * 5, [piled]))
    losses = r["train_loss"]
    assert r["steps"] == 30 and len(losses) == 6
    assert losses[-1] < 0.8 * losses[0] and r["val_loss"][-1] < r["val_loss"][0]


def test_clue_nearest_higher_by_knn_queries_equals_the_search_over_all_pairs():
    from scipy.spatial import cKDTree

    from deepreco.calo.clue import _nearest_higher

    rng = np.random.default_rng(4)
    points = rng.uniform(0, 10, (600, 3))  # continuous: no two distances equal
    rank = rng.permutation(600)
    nh, delta = _nearest_higher(cKDTree(points), points, rank, 8.0)
    d = np.linalg.norm(points[:, None] - points[None], axis=2)
    d[(rank[None, :] <= rank[:, None]) | (d >= 8.0)] = np.inf
    expected = np.where(np.isfinite(d.min(1)), d.argmin(1), -1)
    np.testing.assert_array_equal(nh, expected)
    np.testing.assert_allclose(delta, d.min(1))
    assert (nh == -1).sum() >= 1 and (nh >= 0).sum() > 500


def test_crop_keeps_the_hits_around_the_hard_particles_and_scales_cut_particles(piled):
    cut = pileup.crop(piled, 0.3)
    assert 0 < len(cut.hits) < len(piled.hits)
    hard_hits = piled.truth["particle_id"].isin(piled.particles.loc[pileup.is_hard(piled.particles), "particle_id"])
    kept = piled.truth["hit_id"].isin(cut.hits["hit_id"])
    assert kept[hard_hits & (piled.truth["fraction"] > 0.9)].mean() > 0.95  # the hard showers stay whole
    assert set(cut.truth["hit_id"]) == set(cut.hits["hit_id"]) >= set(cut.fractions["hit_id"])
    before = piled.particles.set_index("particle_id")
    after = cut.particles.set_index("particle_id")
    inside = cut.fractions.groupby("particle_id")["energy"].sum()
    whole = piled.fractions.groupby("particle_id")["energy"].sum()
    np.testing.assert_allclose(after["energy"], before.loc[after.index, "energy"] * (inside / whole)[after.index])
    assert set(after.index) == set(inside.index[inside > 0])
    with pytest.raises(ValueError, match="radius"):
        pileup.crop(piled, 0.0)


def test_training_events_with_a_pileup_range_and_a_crop(monkeypatch):
    from deepreco.calo import train
    from deepreco.errors import DeepRecoError

    settings = settings_for("calo-garnet", overrides={"events": 2, "val_events": 1, "source": "tau",
                                                      "pileup": [0, 3], "crop": 0.3, "seed": 2})
    mus = [train.pileup_of(settings, i, "train") for i in range(3)]
    assert all(0 <= m <= 3 for m in mus) and len(set(mus)) == 3
    assert mus == [train.pileup_of(settings, i, "train") for i in range(3)]  # from (seed, split, i) alone
    assert train.pileup_of(settings, 0, "val") != mus[0]
    assert train._what(settings) == ("2 tau events with pile-up mu flat in [0, 3], cut to DeltaR < 0.3 of the "
                                     "hard particles")
    events = train.simulated_events(settings, "train")
    again = train._training_event(settings, "train", train.TRAIN_SEED, 1)
    assert len(events) == 2 and events[1].hits.equals(again.hits)
    whole = train._training_event({**settings, "crop": None}, "train", train.TRAIN_SEED, 1)
    assert pileup.crop(whole, 0.3).hits.equals(again.hits) and len(whole.hits) > len(again.hits)
    for bad in ([30, 0], [-1, 3], "lots", [1, 2, 3], float("nan"), True):
        with pytest.raises(DeepRecoError, match="pileup must be"):
            train.check_pileup(bad)
    with pytest.raises(DeepRecoError, match="crop must be"):
        train.simulated_events({**settings, "crop": -0.1}, "train")


def test_more_events_add_blocks_of_their_own_seeds_and_pileup():
    from deepreco.calo import train
    from deepreco.errors import DeepRecoError

    settings = settings_for("calo-garnet", overrides={"events": 1, "val_events": 1, "source": "tau", "crop": 0.3,
                                                      "pileup": [0, 3], "seed": 2,
                                                      "more_events": [{"events": 2, "pileup": 0},
                                                                      {"events": 1, "pileup": [2, 4]}]})
    blocks = train.more_events(settings)
    assert [(b["events"], b["pileup"], b["seed"]) for b in blocks] == [(2, 0, 2 + train.MORE_SEED),
                                                                       (1, [2, 4], 3 + train.MORE_SEED)]
    events = train.simulated_events(settings, "train")
    assert len(events) == 4 and len(train.simulated_events(settings, "val")) == 1  # the blocks train only
    base = train._training_event(settings, "train", train.TRAIN_SEED, 0)
    assert events[0].hits.equals(base.hits)
    quiet = train._training_event(blocks[0], "train", train.TRAIN_SEED, 1)
    assert events[2].hits.equals(quiet.hits) and not events[1].hits.equals(base.hits)
    assert not events[1].particles["particle_id"].ge(PILEUP_ID_OFFSET).any()  # mu = 0: no pile-up
    assert 2 <= train.pileup_of(blocks[1], 0, "train") <= 4
    assert "2 more at mu = 0 (seeds (1079, i)), 1 more at mu flat in [2, 4] (seeds (1080, i))" in train._what(settings)
    for bad, match in (([{"events": 0, "pileup": 0}], "whole number"), ([{"events": 2}], r"more_events\[0\]"),
                       ([{"events": 2, "pileup": -1}], "pileup must be"), ({"events": 2}, "must be a list")):
        with pytest.raises(DeepRecoError, match=match):
            train.simulated_events({**settings, "more_events": bad}, "train")


def test_init_starts_a_training_from_a_model_file_and_refuses_another_shape(tmp_path, piled):
    from deepreco.calo.modelfile import load_model
    from deepreco.errors import DeepRecoError

    settings = settings_for("calo-garnet", overrides={"init": "shipped", "t_beta": 0.3, "t_d": 0.5, "max_steps": 1,
                                                      "learning_rate": 1e-9})
    task = clustering_task("garnet", settings, [piled], [piled])
    assert task.net.training
    shipped, _ = load_model("calo_garnet", ("garnet",))
    for a, b in zip(task.net.state_dict().values(), shipped.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    other = {**settings, "network": {**settings["network"], "hidden": 16}}
    with pytest.raises(DeepRecoError, match="other settings"):
        clustering_task("garnet", other, [piled], [piled])
    with pytest.raises(DeepRecoError, match="no model file"):
        clustering_task("garnet", {**settings, "init": str(tmp_path / "none.pt")}, [piled], [piled])


def test_thresholds_under_pileup_are_chosen_on_the_hard_particles(piled):
    from deepreco.calo.methods import OCClustering
    from deepreco.calo.modelfile import load_model
    from deepreco.calo.train import tune_condensation

    model, _ = load_model("calo_garnet", ("garnet",))
    best = tune_condensation(model, [piled], t_betas=(0.1, 0.7), t_ds=(0.8,))
    assert best["judged_on"] == "hard particles"
    chosen = OCClustering(model, best["t_beta"], best["t_d"], "garnet")
    counts, _ = pileup.hard_figures(piled, *chosen.reconstruct(piled))
    assert best["efficiency"] == counts["found"] / counts["hard"] and counts["hard"] >= 2
    alone = pileup.tau_event(0, seed=3, mu=0)
    assert "judged_on" not in tune_condensation(model, [alone], t_betas=(0.3,), t_ds=(0.8,))


def test_the_shipped_pileup_networks_load_with_their_training_and_calibration(piled):
    """The networks trained on taus under pile-up (`PILEUP_MODELS`): each file says what it learned from, each
    network has its own calibration curve there (not the shipped network's), and clusters a tau event."""
    from deepreco.calo import PILEUP_MODELS
    from deepreco.calo.calibration import read
    from deepreco.modelfile import SHIPPED, load

    shipped_curves, curves = read(SHIPPED), read(PILEUP_MODELS)
    assert curves["clue"] == shipped_curves["clue"]
    for name, init, steps, window in (("gravnet", "shipped", 2000, None),
                                      ("garnet", "src/deepreco/data/models/pileup/calo_garnet.pt", 3000, 3.0)):
        settings = load(PILEUP_MODELS / f"calo_{name}.pt", f"calo-{name}").settings
        assert (settings["source"], list(settings["pileup"]), settings["crop"]) == ("tau", [0, 200], 0.3)
        assert (settings["init"], settings["max_steps"], settings.get("time_window")) == (init, steps, window)
        assert curves[name] != shipped_curves[name]
        method = get_method(name, models_dir=PILEUP_MODELS)
        assert method.calibration == curves[name]
        counts, _ = pileup.hard_figures(piled, *method.reconstruct(piled))
        assert counts["hard"] >= 2 and counts["found"] >= 1, (name, counts)
    # GarNet, trained in the time window, runs in it with the curve learned so
    windowed = get_method("garnet+t3", models_dir=PILEUP_MODELS)
    assert windowed.base.calibration == curves["garnet+t3"] != curves["garnet"]
    assert get_method("gravnet+t3", models_dir=PILEUP_MODELS).base.calibration == curves["gravnet"]
    counts, _ = pileup.hard_figures(piled, *windowed.reconstruct(piled))
    assert counts["hard"] >= 2 and counts["found"] >= 1, counts


def test_a_cached_tau_event_is_the_event_simulated_again(tmp_path, piled):
    first = pileup.cached_tau_event(0, 3, 4, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["tau_seed3_mu4_0.pkl"]
    again = pileup.cached_tau_event(0, 3, 4, tmp_path)
    pd.testing.assert_frame_equal(first.hits, piled.hits)
    pd.testing.assert_frame_equal(again.hits, piled.hits)
    pd.testing.assert_frame_equal(again.truth, piled.truth)

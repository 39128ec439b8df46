"""The time window around the hard collision (`deepreco.calo.timing`): each hit's time resolution, the hits it keeps
under pile-up, any method run on them (``NAME+tK``), a network trained on them, and bad input."""

import numpy as np
import pandas as pd
import pytest
import torch

from deepreco.calo import pileup
from deepreco.calo.geometry import C_MM_PER_NS, DEFAULT
from deepreco.calo.guns import PILEUP_ID_OFFSET, fixed
from deepreco.calo.methods import get_method
from deepreco.calo.simulate import simulate
from deepreco.calo.timing import InTime, cut, in_time, sigma_t, split_window
from deepreco.errors import DeepRecoError, EventError

torch.set_num_threads(1)


def _hits(energy_mips, dt):
    """Hits on layer 5 of the face plane at x = 400 mm, ``dt`` ns after their flight time from the origin."""
    n = len(energy_mips)
    x, y, z = np.full(n, 400.0), np.zeros(n), np.full(n, DEFAULT.z_front + 10.0)
    flight = np.sqrt(x ** 2 + z ** 2) / C_MM_PER_NS
    mip = DEFAULT["mip"][5]
    return pd.DataFrame({"hit_id": np.arange(1, n + 1), "x": x, "y": y, "z": z, "layer": 5,
                         "energy": np.asarray(energy_mips, float) * mip, "time": flight + np.asarray(dt, float)})


def test_sigma_t_is_the_digitisation_s_resolution():
    hits = _hits([1.0, 20.0, 1000.0], [0, 0, 0])
    s_over_n = np.array([1.0, 20.0, 1000.0]) / DEFAULT.noise_mips
    np.testing.assert_allclose(sigma_t(hits), np.sqrt((1 / s_over_n) ** 2 + 0.02 ** 2))
    assert 0.14 < sigma_t(hits)[0] < 0.16 and 0.02 < sigma_t(hits)[1] < 0.025


def test_the_window_drops_a_large_hit_out_of_time_and_keeps_a_small_one():
    # 20 MIPs (sigma 22 ps): on time kept, 100 ps late dropped; 1 MIP (sigma 150 ps) 300 ps late kept at 3 sigma
    hits = _hits([20.0, 20.0, 1.0, 1.0], [0.01, 0.10, 0.30, -0.50])
    assert in_time(hits, 3.0).tolist() == [True, False, True, False]
    assert in_time(hits, 3.0, t0=0.1).tolist() == [False, True, True, False]  # another collision's time
    # a measured t0 with a 50 ps error: the window widened by it keeps the large hit 100 ps late
    assert in_time(hits, 3.0, t0_sigma=0.05).tolist() == [True, True, True, False]


@pytest.fixture(scope="module")
def piled():
    pytest.importorskip("pythia8mc")
    return pileup.tau_event(0, seed=3, mu=20)


def test_under_pileup_the_window_keeps_the_hard_hits_and_drops_most_pileup_energy(piled):
    keep = in_time(piled.hits, 3.0)
    pid = piled.truth.set_index("hit_id").loc[piled.hits["hit_id"], "particle_id"].to_numpy()
    e = piled.hits["energy"].to_numpy()
    hard, pu = (pid > 0) & (pid < PILEUP_ID_OFFSET), pid >= PILEUP_ID_OFFSET
    assert e[hard & keep].sum() > 0.9 * e[hard].sum()  # the slow hadronic component goes
    assert e[pu & keep].sum() < 0.6 * e[pu].sum()
    small = cut(piled, keep)
    assert len(small.hits) == keep.sum() and set(small.truth["hit_id"]) == set(small.hits["hit_id"])
    assert small.particles is piled.particles


def test_a_method_in_the_window_gives_the_whole_event_s_hit_table(piled):
    method = get_method("clue+t3")
    assert isinstance(method, InTime) and method.k == 3.0 and method.name == "clue+t3"
    ht, clusters = method.reconstruct(piled)
    keep = in_time(piled.hits, 3.0)
    assert ht["hit_id"].tolist() == piled.hits["hit_id"].tolist()
    assert (ht.loc[~keep, "cluster_id"] == -1).all() and (ht.loc[~keep, "hit_class"] == 0).all()
    alone, _ = get_method("clue").reconstruct(cut(piled, keep))
    assert ht.loc[keep, "cluster_id"].tolist() == alone["cluster_id"].tolist()
    assert set(ht["cluster_id"]) - {-1} == set(clusters["cluster_id"])


@pytest.mark.parametrize("name", ["clue+t3", "garnet+t3"])
def test_an_isolated_photon_is_one_cluster_with_its_energy_in_the_window(name):
    event = simulate(fixed([22], [50.0], [2.0], [0.3]), seed=0, tracker_x0=0.0)
    _, clusters = get_method(name).reconstruct(event)
    big = clusters[clusters["energy"] > 2.0]
    assert len(big) == 1 and abs(big["energy"].iloc[0] / 50.0 - 1) < 0.1


def test_a_network_trained_on_the_hits_in_the_window_lowers_its_loss_and_keeps_its_window(piled, tmp_path):
    from deepreco.calo.train import clustering_task
    from deepreco.modelfile import load
    from deepreco.training import fit, settings_for

    settings = settings_for("calo-gravnet", overrides={"network": {"hidden": 16, "blocks": 2, "k": 8},
                                                       "t_beta": 0.3, "t_d": 0.5, "max_steps": 30,
                                                       "learning_rate": 3e-3, "seed": 0, "time_window": 3.0})
    torch.manual_seed(0)
    r = fit("calo-gravnet", settings, tmp_path / "calo_gravnet.pt", progress=False,
            make_task=lambda s: clustering_task("gravnet", s, [piled] * 5, [piled]))
    assert r["steps"] == 30 and r["train_loss"][-1] < 0.9 * r["train_loss"][0]
    assert r["val_loss"][-1] < r["val_loss"][0]
    task = clustering_task("gravnet", settings, [piled], [piled])
    assert task.info["hits_per_event"] == in_time(piled.hits, 3.0).sum()
    assert load(tmp_path / "calo_gravnet.pt", "calo-gravnet").settings["time_window"] == 3.0
    with pytest.raises(DeepRecoError, match="time window"):
        clustering_task("gravnet", {**settings, "time_window": -1}, [piled], [piled])


def test_bad_windows_and_hits_without_time_are_one_clear_error():
    assert split_window("clue+sc+t2.5") == ("clue+sc", 2.5) and split_window("clue+sc") == ("clue+sc", None)
    for name in ("clue+t0", "clue+t0.0"):
        with pytest.raises(DeepRecoError, match="time window must be"):
            get_method(name)
    no_time = _hits([20.0], [0.0]).assign(time=0.0)
    with pytest.raises(EventError, match="carry no time"):
        in_time(no_time, 3.0)
    with pytest.raises(EventError, match="layers in"):
        in_time(_hits([20.0], [0.0]).assign(layer=-1), 3.0)


def test_the_cli_refuses_a_bad_window_in_one_line():
    from typer.testing import CliRunner

    from deepreco.cli import app

    for bad in ("clue+t0", "clue+t3+sc", "clue+tK"):
        r = CliRunner().invoke(app, ["calo", "evaluate", "--methods", bad, "--events", "1"])
        assert r.exit_code != 0 and "+tK last, K > 0" in r.output and "Traceback" not in r.output

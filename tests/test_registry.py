"""One registry for every family of methods: found by name, built with checked parameters, the same surface."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from deepreco.calo.guns import fixed
from deepreco.calo.methods import CALO_METHODS, ClueMethod, DRNCorrected, GravNetClustering, get_method
from deepreco.calo.simulate import simulate as simulate_calo
from deepreco.cli import app
from deepreco.deepcore.baseline import jetcore_seeds
from deepreco.deepcore.detector import PixelBarrel
from deepreco.deepcore.events import simulate as simulate_jets
from deepreco.deepcore.seeders import SEEDERS
from deepreco.errors import DeepRecoError
from deepreco.reconstruct import METHODS
from deepreco.registry import Registry, families


def test_every_family_is_found_by_name():
    found = families()
    assert set(found) == {"tracking", "calo", "seeding"}
    assert {"ckf", "dbscan", "gnn", "lstm", "truth"} <= set(found["tracking"])
    assert set(found["calo"]) == {"clue", "gravnet", "edgeconv"}
    assert set(found["seeding"]) == {"jetcore", "deepcore"}
    assert found["tracking"] is METHODS and found["calo"] is CALO_METHODS and found["seeding"] is SEEDERS


@pytest.mark.parametrize("registry, name, bad", [(METHODS, "ckf", "radius"), (CALO_METHODS, "clue", "model"),
                                                 (SEEDERS, "jetcore", "threshold")])
def test_unknown_names_and_parameters_are_one_line_errors(registry, name, bad):
    with pytest.raises(DeepRecoError, match=f"unknown {registry.what} 'nope'; available: "):
        registry.get("nope")
    with pytest.raises(DeepRecoError, match=f"{registry.what} '{name}' has no parameter {bad}; it takes "):
        registry.get(name, **{bad: 1})


@pytest.mark.parametrize("registry, name, params", [(METHODS, "ckf", {"pt_min": 0.5}),
                                                    (METHODS, "dbscan", {"eps": 0.01}),
                                                    (CALO_METHODS, "clue", {"kappa": 7.0}),
                                                    (SEEDERS, "jetcore", {"split": True, "cone": 0.05})])
def test_a_method_keeps_its_parameters_and_clones_from_them(registry, name, params):
    method = registry.get(name, **params)
    assert method.name == name and callable(method.reconstruct)
    got = (method.get_params() if hasattr(method, "get_params")
           else {k: getattr(method, k) for k in registry.parameters(name) if hasattr(method, k)})
    for key, value in params.items():
        assert got[key] == value
    clone = type(method)(**got)
    assert {k: getattr(clone, k) for k in params} == params


def test_a_name_registered_twice_is_refused():
    reg = Registry("test-family", "widget")

    @reg.register("a")
    class A:
        pass

    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(type("B", (), {}))
    assert reg.names() == ["a"] and A.name == "a"


def test_calo_names_with_drn_and_the_shipped_networks():
    assert isinstance(get_method("clue"), ClueMethod)
    net = get_method("gravnet")
    assert isinstance(net, GravNetClustering) and net.name == "gravnet" and 0 < net.t_beta < 1
    assert CALO_METHODS.get("gravnet", t_beta=0.9).t_beta == 0.9
    both = get_method("clue+drn")
    assert isinstance(both, DRNCorrected) and both.name == "clue+drn"
    with pytest.raises(DeepRecoError, match=r"only \+drn may follow"):
        get_method("clue+kmeans")
    event = simulate_calo(fixed([22, 211], [20, 30], [2.0, 2.1], [0.3, 0.4]), seed=5)
    by_name, direct = get_method("clue").reconstruct(event), ClueMethod().reconstruct(event)
    pd.testing.assert_frame_equal(by_name[0], direct[0])


def test_seeders_by_name_give_what_the_functions_give():
    det = PixelBarrel()
    pt, eta, phi, q = np.array([30.0, 20.0]), np.array([0.2, 0.25]), np.array([0.3, 0.34]), np.array([1, -1])
    particles = pd.DataFrame({"particle_id": [1, 2], "vx": 0.0, "vy": 0.0, "vz": 0.0, "px": pt * np.cos(phi),
                              "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "q": q, "nhits": 0,
                              "particle_type": 211})
    jets = pd.DataFrame([(1500.0, 0.2, 0.3)], columns=["pt", "eta", "phi"])
    event = simulate_jets(particles, jets, np.zeros(3), np.random.default_rng(1), det)
    seeds = SEEDERS.get("jetcore", detector=det).reconstruct(event)
    pd.testing.assert_frame_equal(seeds, jetcore_seeds(event, det))
    assert len(seeds) >= 2
    deep = SEEDERS.get("deepcore", detector=det).reconstruct(event)
    assert {"x", "y", "z", "phi", "eta", "inv_pt"} <= set(deep.columns)


def test_methods_command_lists_every_family():
    result = CliRunner().invoke(app, ["methods", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["tracking"]["ckf"]["pt_min"] == 0.15
    assert listed["seeding"]["jetcore"]["split"] is False
    assert set(listed["calo"]) == {"clue", "gravnet", "edgeconv"}

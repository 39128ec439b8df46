"""One registry for every family of methods: found by name, built with checked parameters, the same surface."""

import json
from pathlib import Path

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
from deepreco.registry import (
    CALO,
    CALO_NETWORKS,
    GENERATORS,
    LSTM_MODELS,
    NETWORKS,
    PYTHON_MODELS,
    SEEDING,
    TOY_MODELS,
    TRACKING,
    Registry,
    families,
    out_of_range,
)


def test_every_family_is_found_by_name():
    found = families()
    assert set(found) == {"tracking", "calo", "seeding"}
    assert {"ckf", "dbscan", "gnn", "lstm", "truth"} <= set(found["tracking"])
    assert set(found["calo"]) == {"clue", "gravnet", "edgeconv", "garnet"}
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


def test_parameter_ranges_are_checked_when_a_method_is_made():
    assert out_of_range(0.0, "> 0") == "> 0" and out_of_range(1e-9, "> 0") is None
    assert out_of_range(0, ">= 0") is None and out_of_range(-1, ">= 0") == ">= 0"
    assert out_of_range(float("inf"), ">= 1") == "a finite number >= 1"
    assert out_of_range(float("nan"), "> 0") == "a finite number > 0"
    for name, key, value, bounds in [("ckf", "pt_min", 0.0, "> 0"), ("dbscan", "min_samples", 0, ">= 1"),
                                     ("gnn", "edge_threshold", -0.1, ">= 0"), ("lstm", "batch_size", 0, ">= 1")]:
        with pytest.raises(DeepRecoError, match=f"method '{name}': parameter {key} must be {bounds}, got {value}$"):
            METHODS.get(name, **{key: value})
    assert METHODS.get("ckf", outer_d0_max=0).outer_d0_max == 0  # 0 skips that pass: in range
    with pytest.raises(DeepRecoError, match="seeder 'jetcore': parameter pt_min must be > 0, got 0$"):
        SEEDERS.get("jetcore", pt_min=0)  # it divided by zero at the first event


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
    with pytest.raises(DeepRecoError, match=r"only \+drn, then \+sc, may follow"):
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
    assert set(listed["calo"]) == {"clue", "gravnet", "edgeconv", "garnet"}
    table = CliRunner().invoke(app, ["methods"], env={"COLUMNS": "400"}).stdout
    assert "pt_min=0.15 (> 0)" in table and "n_branches=3 (>= 1)" in table  # the ranges checked when made


# Every option that takes a name, with a name no family has: (argv, the one line expected on stderr).
EV = "{event}"
BAD_NAMES = [
    (["simulate", "-g", "nope", "--out", "{tmp}/o"], "unknown generator 'nope'; available: ttbar, dijet, gun, trackml"),
    (["reconstruct", EV, "-m", "nope", "--out", "{tmp}/o"], "unknown method 'nope'; available: acts-ckf, ckf, "),
    (["evaluate", EV, "-m", "ckf", "-m", "nope"], "unknown method 'nope'; available: "),
    (["fit", EV, "-m", "nope"], "unknown method 'nope'; available: "),
    (["reconstruct", EV, "-m", "gnn", "--fallback", "nope", "--out", "{tmp}/o"], "unknown fallback 'nope'; "),
    (["export", "nope", "--out", "{tmp}/o"], "unknown network 'nope'; available: lstm, deepcore, gnn-filter"),
    (["export", "gnn-filter"], "give one of --out DIR (ONNX files) or --triton REPO"),
    (["train", "lstm", "--model", "nope", "--out", "{tmp}/l.pt"], "unknown LSTM model 'nope'; available: lstm, "),
    (["train", "nope"], "No such command 'nope'"),
    (["calo", "evaluate", "--methods", "clue,nope"], "unknown calorimeter method 'nope'; available: clue, "),
    (["calo", "evaluate", "--methods", "clue+nope"],
     "unknown calorimeter method 'clue+nope': only +drn, +sc, +tK may follow "),
    (["calo", "evaluate", "--methods", "clue+sc+sc"],
     "unknown calorimeter method 'clue+sc+sc': only +drn, +sc, +tK may follow "),
    (["calo", "evaluate", "--methods", "clue+t3+sc"],
     "unknown calorimeter method 'clue+t3+sc': only +drn, +sc, +tK may follow a calorimeter method (+tK last"),
    (["calo", "evaluate", "--source", "nope"], "unknown particle source 'nope'; available: gun, tau"),
    (["calo", "evaluate", "--fallback", "nope"], "unknown fallback 'nope'; available: local"),
    (["calo", "train", "--models", "gravnet,nope", "--out", "{tmp}/o"], "unknown calorimeter network 'nope'; "),
    (["calo", "train", "--source", "nope", "--out", "{tmp}/o"], "unknown particle source 'nope'"),
    (["deepcore", "evaluate", "--fallback", "nope"], "unknown fallback 'nope'"),
    (["toys", "benchmark", "--models", "lstm,nope"], "unknown toy model 'nope'; available: lstm, "),
    (["simulate", "-g", "gun", "--set", "n", "--out", "{tmp}/o"], "--set n: expected KEY=VALUE"),
    (["train", "lstm", "--out", "{tmp}/l.pt"], "lstm: no training data; give --data DIR"),
    (["train", "gnn", "--out", "{tmp}/g.pt"], "gnn: no training data; give --data DIR"),
    (["train", "embedding", "--out", "{tmp}/e.pt"], "embedding: no training data; give --data DIR"),
]


def test_an_unknown_name_is_one_line_before_torch_pandas_numba_or_pythia_is_imported(tmp_path):
    """Each command runs in one fresh process (in turn, through Click as the `deepreco` script does); after each,
    none of the heavy modules may be loaded: the name was checked against the registry's plain data."""
    import subprocess
    import sys

    import deepreco

    event = Path(deepreco.__file__).parent / "data" / "event000001001"  # shipped: hits and particles
    cases = [[a.format(event=event, tmp=tmp_path) for a in argv] for argv, _ in BAD_NAMES]
    code = ("import json, sys\nfrom typer.testing import CliRunner\nfrom deepreco.cli import app\n"
            f"for argv in {cases!r}:\n"
            "    r = CliRunner().invoke(app, argv)\n"
            "    heavy = sorted(m for m in ('torch', 'pandas', 'numpy', 'numba', 'pythia8mc', 'pythia8', 'sklearn')\n"
            "                   if m in sys.modules)\n"
            "    print(json.dumps([r.exit_code, r.stderr, heavy]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(results) == len(BAD_NAMES)
    for (argv, message), (exit_code, stderr, heavy) in zip(BAD_NAMES, results, strict=True):
        assert exit_code in (1, 2) and stderr.startswith("error: ") and stderr.count("\n") == 1, (argv, stderr)
        assert message in stderr, (argv, stderr)
        assert heavy == [], (argv, heavy)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("registry", [TRACKING, CALO, SEEDING, GENERATORS, NETWORKS, PYTHON_MODELS, CALO_NETWORKS,
                                      TOY_MODELS, LSTM_MODELS])
def test_every_listed_name_is_registered_by_its_module(registry):
    """The registry's plain data and the modules agree: each listed name resolves to what its module registered,
    and the modules register no name that is not listed (the command line would not know it)."""
    found = dict(registry.items())
    assert list(found) == list(registry.listed) and all(found.values())


@pytest.mark.parametrize("argv, registry", [(["reconstruct"], TRACKING), (["evaluate"], TRACKING),
                                            (["simulate"], GENERATORS), (["train", "lstm"], LSTM_MODELS),
                                            (["calo", "evaluate"], CALO), (["calo", "train"], CALO_NETWORKS),
                                            (["toys", "benchmark"], TOY_MODELS)])
def test_help_lists_the_names(argv, registry):
    result = CliRunner().invoke(app, [*argv, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.replace("│", " ").split())
    assert ", ".join(registry) in text, text

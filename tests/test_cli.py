"""The command line as a user meets it: results on good input, one-line errors and nothing written on bad."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from deepreco.cli import app
from deepreco.io import write_event, write_submission
from deepreco.metrics import add_weights

runner = CliRunner()


@pytest.fixture
def event_dir(tmp_path, tiny_event):
    tiny_event.truth = add_weights(tiny_event.truth, tiny_event.particles)
    write_event(tiny_event, tmp_path / "ev")
    return tmp_path / "ev" / "event000000042"


def _truth_submission(event_dir):
    truth = pd.read_csv(f"{event_dir}-truth.csv")
    return pd.DataFrame({"hit_id": truth["hit_id"], "track_id": truth["particle_id"]})


def test_score_perfect_submission_json(event_dir, tmp_path):
    sub = write_submission(_truth_submission(event_dir), tmp_path / "sub.csv")
    result = runner.invoke(app, ["score", str(event_dir), str(sub), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["score"] == pytest.approx(1.0, abs=1e-6)
    assert out["efficiency"] == 1.0 and out["fake_rate"] == 0.0 and out["duplicate_rate"] == 0.0
    assert out["n_tracks"] == 3  # the noise "track" has 3 hits, fewer than the 4 a track needs to count


def test_score_table(event_dir, tmp_path):
    sub = write_submission(_truth_submission(event_dir), tmp_path / "sub.csv")
    plot = tmp_path / "eff.png"
    result = runner.invoke(app, ["score", str(event_dir), str(sub), "--plot", str(plot)])
    assert result.exit_code == 0 and "score" in result.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("fault, message", [
    ("unknown", "not in the event"),
    ("twice", "listed more than once"),
])
def test_score_bad_submission(event_dir, tmp_path, fault, message):
    sub = _truth_submission(event_dir)
    if fault == "unknown":
        sub.loc[0, "hit_id"] = 10_000
    else:
        sub = pd.concat([sub, sub.iloc[:1].assign(track_id=99)])
    path = write_submission(sub, tmp_path / "sub.csv")
    result = runner.invoke(app, ["score", str(event_dir), str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "sub.csv" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert any(m in result.stderr for m in message.split("|")), result.stderr


def test_score_empty_event_is_zero(tmp_path):
    from deepreco.event import Event

    cols = ["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"]
    tcols = ["hit_id", "particle_id", "tx", "ty", "tz", "tpx", "tpy", "tpz", "weight"]
    pcols = ["particle_id", "vx", "vy", "vz", "px", "py", "pz", "q", "nhits"]
    ev = Event(hits=pd.DataFrame(columns=cols), truth=pd.DataFrame(columns=tcols),
               particles=pd.DataFrame(columns=pcols), event_id=3)
    write_event(ev, tmp_path)
    sub = write_submission(pd.DataFrame({"hit_id": [], "track_id": []}), tmp_path / "sub.csv")
    result = runner.invoke(app, ["score", str(tmp_path / "event000000003"), str(sub), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["score"] == 0.0


def test_missing_file_and_missing_column(tmp_path, event_dir):
    result = runner.invoke(app, ["info", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "nothing: no such file" in result.stderr
    bad = tmp_path / "bad" / "event000000001-hits.csv"
    bad.parent.mkdir()
    bad.write_text("hit_id,x,y,volume_id,layer_id,module_id\n1,0,0,8,2,1\n")
    out = tmp_path / "display.png"
    result = runner.invoke(app, ["display", str(bad), "--out", str(out)])
    assert result.exit_code == 1
    assert "event000000001-hits.csv: missing column z" in result.stderr
    assert not out.exists()


def test_info_json_and_dataset(event_dir, tmp_path):
    result = runner.invoke(app, ["info", str(event_dir), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_hits"] == 18 and summary["noise_fraction"] == pytest.approx(3 / 18)
    result = runner.invoke(app, ["info", str(event_dir.parent)])
    assert result.exit_code == 0 and "18" in result.stdout


def test_display_by_track_and_particle(event_dir, tmp_path):
    sub = _truth_submission(event_dir)
    sub["track_id"] = np.where(sub["track_id"] == 0, -1, sub["track_id"])
    sub = sub[sub["track_id"] >= 0]
    path = write_submission(sub, tmp_path / "sub.csv")
    for extra in ([], ["--tracks", str(path)]):
        out = tmp_path / "new" / f"d{len(extra)}.png"  # a folder made for it
        result = runner.invoke(app, ["display", str(event_dir), "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_runs_the_whole_chain(tmp_path):
    out = tmp_path / "new" / "demo.png"  # its folder made when missing
    result = runner.invoke(app, ["demo", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["methods"]
    assert set(rows) == {"ckf", "lstm", "gnn"}
    ckf_score = rows["ckf"]["score"]
    assert ckf_score > 0.75  # 0.8 or more with seed 1 since ckf seeds from 0.15 GeV; a guard against regressions
    assert out.stat().st_size > 10_000


@pytest.fixture(scope="module")
def gun_dir(tmp_path_factory):
    """One event of 5 muons on the TrackML detector (what ckf reads)."""
    out = tmp_path_factory.mktemp("gun")
    result = runner.invoke(app, ["simulate", "-g", "gun", "--set", "n=5", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_method_parameters_are_set_on_the_command_line(gun_dir, tmp_path):
    args = ["evaluate", str(gun_dir), "-m", "ckf", "-m", "truth", "--json"]
    plain = json.loads(runner.invoke(app, args).stdout)["ckf"]
    # ckf takes them, truth does not: they go to ckf only
    result = runner.invoke(app, [*args, "--set", "min_hits=30", "--set", "displaced_min_hits=30", "--set",
                                 "outer_min_hits=30"])
    assert result.exit_code == 0, result.output
    strict = json.loads(result.stdout)
    assert plain["n_tracks"] > 0 and strict["ckf"]["n_tracks"] == 0 and strict["truth"]["score"] == 1.0
    # a method parameter named like one of evaluate's own (its --pt-min is the efficiency's) goes to the method
    result = runner.invoke(app, [*args, "--set", "pt_min=50", "--set", "displaced_d0_max=0", "--set", "outer_d0_max=0"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ckf"]["n_tracks"] == 0  # no seed of 50 GeV among the gun's muons
    out = tmp_path / "out"
    result = runner.invoke(app, ["reconstruct", str(gun_dir), "-m", "ckf", "--set", "pt_min=0.5", "--set",
                                 "inward=false", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.iterdir())) == 1


def test_evaluate_method_takes_the_method_parameters_apart_from_its_own(gun_dir):
    from deepreco.errors import DeepRecoError
    from deepreco.io import Dataset
    from deepreco.reconstruct import evaluate_method, get_method

    quiet = {"displaced_d0_max": 0, "outer_d0_max": 0}
    plain = evaluate_method(Dataset(gun_dir), "ckf", pt_min=50.0, params=quiet)  # the efficiency's threshold
    high = evaluate_method(Dataset(gun_dir), "ckf", params={**quiet, "pt_min": 50.0})  # ckf's seeding threshold
    assert plain["n_tracks"] > 0 and high["n_tracks"] == 0
    with pytest.raises(DeepRecoError, match="for a method given by name"):
        evaluate_method(Dataset(gun_dir), get_method("truth"), params={"pt_min": 1.0})


@pytest.mark.parametrize("setting, code, message", [
    ("pt_min=abc", 1, "method 'ckf': parameter pt_min must be a number, got 'abc'"),
    ("inward=maybe", 1, "method 'ckf': parameter inward must be true or false, got 'maybe'"),
    ("kalman=false", 1, "--set kalman=false: no method of ckf has a parameter kalman"),
    ("pt_min", 2, "--set pt_min: expected KEY=VALUE"),
    ("pt_min=-1", 1, "method 'ckf': parameter pt_min must be > 0, got -1"),  # it failed each event, at its start
    ("n_branches=0", 1, "method 'ckf': parameter n_branches must be >= 1, got 0"),  # it found nothing, silently
    ("field=nan", 1, "method 'ckf': parameter field must be a finite number > 0, got nan"),
])
def test_a_wrong_method_parameter_is_one_line_and_writes_nothing(setting, code, message, gun_dir, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["reconstruct", str(gun_dir), "-m", "ckf", "--set", setting, "--out", str(out)])
    assert result.exit_code == code and result.stderr.strip() == f"error: {message}", result.output
    assert not out.exists()


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_simulate_is_reproducible_and_parallel(tmp_path):
    args = ["simulate", "-g", "gun", "--set", "n=5", "--set", "pt=1,5", "-n", "2", "--seed", "3", "--noise", "0"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert runner.invoke(app, [*args, "--out", str(a)]).exit_code == 0
    result = runner.invoke(app, [*args, "--out", str(b), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert _files(a) == _files(b)
    assert len(_files(a)) == 8  # 2 events x hits, cells, particles, truth
    result = runner.invoke(app, ["evaluate", str(a), "-m", "truth", "--json"])
    assert json.loads(result.stdout)["truth"]["n_events"] == 2


def test_simulate_refuses_a_full_folder_and_bad_particle_lists(tmp_path):
    out = tmp_path / "out"
    args = ["simulate", "-g", "gun", "--set", "n=2", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "already holds 1 event(s); use --overwrite" in result.stderr
    assert runner.invoke(app, [*args, "--overwrite", "--seed", "9"]).exit_code == 0
    bad = tmp_path / "particles.csv"
    bad.write_text("particle_id,vx,vy,vz,px,py,pz,q,nhits\n1,0,0,0,1,1,1,2,0\n")
    fresh = tmp_path / "fresh"
    result = runner.invoke(app, ["simulate", "-g", "trackml", "--particles", str(bad), "--out", str(fresh)])
    assert result.exit_code == 1
    assert "particles.csv: column q has 1 value(s) outside -1, 0, 1" in result.stderr
    assert not fresh.exists()


def test_reconstruct_refuses_to_replace_submissions_unless_told(event_dir, tmp_path):
    """A second run into a folder that holds an event's submission (another method's, say) is refused before any
    event is read, and the file is left as it was; --overwrite replaces it, --resume skips it."""
    out = tmp_path / "subs"
    args = ["reconstruct", str(event_dir), "-m", "truth", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    (path,) = out.iterdir()
    path.write_text("event_id,hit_id,track_id\n")  # stands for another run's submission
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "already holds the submission of 1 of these 1 event(s)" in result.stderr
    assert "use --overwrite to replace them or --resume" in result.stderr
    assert path.read_text() == "event_id,hit_id,track_id\n" and [p.name for p in out.iterdir()] == [path.name]
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 0 and "wrote 0 submission(s)" in result.stdout
    result = runner.invoke(app, [*args, "--overwrite", "--resume"])
    assert result.exit_code == 1 and "--overwrite and --resume: choose one" in result.stderr
    result = runner.invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0 and "wrote 1 submission(s)" in result.stdout
    assert len(path.read_text().splitlines()) > 1


def test_train_lstm_command_writes_a_model_that_reconstructs(tmp_path):
    data = tmp_path / "data"
    args = ["simulate", "-g", "gun", "--set", "n=30", "--set", "pt=1,10", "-n", "3", "--noise", "0", "--out", str(data)]
    assert runner.invoke(app, args).exit_code == 0
    model = tmp_path / "lstm.pt"
    result = runner.invoke(app, ["train", "lstm", "--data", str(data), "--out", str(model), "--epochs", "2",
                                 "--batch-size", "32", "--val-fraction", "0.34"])
    assert result.exit_code == 0, result.output
    assert model.stat().st_size > 10_000
    result = runner.invoke(app, ["evaluate", str(data), "-m", "lstm", "--model", str(model), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["lstm"]["n_events"] == 3
    result = runner.invoke(app, ["evaluate", str(data), "-m", "dbscan", "--model", str(model)])
    assert result.exit_code == 1 and "method 'dbscan' has no parameter model" in result.stderr
    result = runner.invoke(app, ["train", "lstm", "--data", str(tmp_path / "none"), "--out", str(model)])
    assert result.exit_code == 1 and result.stderr.startswith("error: ")


def test_train_gnn_command_writes_a_model_that_reconstructs(tmp_path):
    data = tmp_path / "data"
    args = ["simulate", "-g", "gun", "--set", "n=30", "--set", "pt=2,10", "--set", "eta=0.2,0.6", "--set",
            "phi=0.3,0.7", "-n", "4", "--noise", "0.05", "--out", str(data)]
    assert runner.invoke(app, args).exit_code == 0
    model = tmp_path / "gnn.pt"
    result = runner.invoke(app, ["train", "gnn", "--data", str(data), "--out", str(model), "--val", "1",
                                 "--filter-epochs", "1", "--gnn-epochs", "2", "--hidden", "8", "--iterations", "2"])
    assert result.exit_code == 0, result.output
    assert "validation TrackML score" in result.stdout
    result = runner.invoke(app, ["evaluate", str(data), "-m", "gnn", "--model", str(model), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["gnn"]["n_events"] == 4
    result = runner.invoke(app, ["train", "gnn", "--data", str(data), "--out", str(model), "--val", "4"])
    assert result.exit_code == 1 and "training needs at least 5" in result.stderr
    assert model.is_file()  # the failed run left the earlier model as it was


@pytest.mark.parametrize("argv", [["--help"], ["calo", "--help"], ["deepcore", "--help"], ["toys", "--help"],
                                  ["train", "--help"]])
def test_help_loads_no_heavy_module(argv):
    """`deepreco --help` and the groups' help start fast: torch, numba, pythia8, sklearn load only where used."""
    import subprocess
    import sys

    code = (f"import sys\nfrom deepreco.cli import app\ntry:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('torch', 'numba', 'pythia8mc', 'pythia8', 'sklearn', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "LOADED []"


@pytest.mark.parametrize("argv, message", [
    (["info", "/nonexistent/event000000001-hits.csv"], "event000000001-hits.csv: no such file or event prefix"),
    (["evaluate", "/nonexistent", "-m", "ckf"], "/nonexistent: no such file or event prefix"),
    (["reconstruct", "{data}", "-m", "lstm", "--model", "/absent.pt", "--out", "{tmp}/out"],
     "/absent.pt: no such model file"),
    (["score", "{data}/event000000042", "/absent.csv"], "/absent.csv: no such file"),
    (["train", "gnn", "--data", "/nonexistent", "--out", "{tmp}/gnn.pt"], "/nonexistent: no such file or directory"),
    (["train", "lstm", "--resume", "/absent.ckpt", "--out", "{tmp}/lstm.pt"], "/absent.ckpt: no such checkpoint"),
    (["calo", "evaluate", "--models-dir", "/nonexistent"], "/nonexistent: no such folder"),
    (["deepcore", "evaluate", "--model", "/absent.pt"], "/absent.pt: no such model file"),
])
def test_a_missing_input_is_one_line_before_pandas_or_torch_is_imported(argv, message, event_dir, tmp_path):
    """A mistyped path is an error at once: the check comes before the heavy imports (well under a second)."""
    import subprocess
    import sys

    argv = [a.format(data=event_dir.parent, tmp=tmp_path) for a in argv]
    code = (f"import sys\nfrom deepreco.cli import app\ntry:\n    app({argv!r})\nexcept SystemExit as e:\n"
            "    print('EXIT', e.code)\n"
            "print('LOADED', sorted(m for m in ('pandas', 'numpy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-2:] == ["EXIT 1", "LOADED []"], out.stdout + out.stderr
    assert out.stderr.strip().count("\n") == 0 and message in out.stderr, out.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, code, message", [
    (["-g", "gun", "--set", "nope=1"], 1, "generator 'gun' has no option nope; it takes n, pdg"),
    (["-g", "gun", "--set", "n=abc"], 2, "option n=abc of generator 'gun': n takes whole numbers"),
    (["-g", "ttbar", "--pileup", "20", "--set", "n=2"], 1, "generator 'ttbar' has no option n"),
])
def test_a_wrong_generator_option_is_one_line_before_pandas_or_pythia_is_imported(argv, code, message, tmp_path):
    """`simulate --set` is checked against the generator's own signature before the simulation is imported."""
    import subprocess
    import sys

    argv = ["simulate", *argv, "--out", str(tmp_path / "out")]
    script = (f"import sys\nfrom deepreco.cli import app\ntry:\n    app({argv!r})\nexcept SystemExit as e:\n"
              "    print('EXIT', e.code)\n"
              "print('LOADED', sorted(m for m in ('pandas', 'torch', 'numba', 'pythia8mc') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-2:] == [f"EXIT {code}", "LOADED []"], out.stdout + out.stderr
    assert out.stderr.strip().count("\n") == 0 and message in out.stderr, out.stderr
    assert not (tmp_path / "out").exists()


def test_score_and_info_tables_fit_80_columns_and_keep_a_long_name_whole(event_dir, tmp_path):
    import os
    import shutil
    import subprocess

    name = "a-submission-with-a-rather-long-file-name-that-a-user-might-well-choose-for-it.csv"
    sub = write_submission(_truth_submission(event_dir), tmp_path / name)
    exe = shutil.which("deepreco")
    for argv in (["score", str(event_dir), str(sub)], ["info", str(event_dir)]):
        out = subprocess.run([exe, *argv], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "COLUMNS": "80", "TERM": "dumb"})
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].startswith(str(event_dir) if argv[0] == "info" else str(sub))
        assert all(len(line) <= 80 for line in lines[1:]), "\n".join(lines)


def test_an_error_message_keeps_its_brackets(capsys):
    """rich markup must not eat text such as an extra's name: "pip install 'deepreco[train]'"."""
    import typer

    from deepreco.console import fail
    from deepreco.errors import DeepRecoError

    with pytest.raises(typer.Exit):
        fail(DeepRecoError("training needs PyTorch Lightning: pip install 'deepreco[train]'; got [1, 2]"))
    assert "pip install 'deepreco[train]'; got [1, 2]" in capsys.readouterr().err

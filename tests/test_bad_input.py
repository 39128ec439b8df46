"""Malformed inputs and nonsense options across every command: each stops before any work, with one line
``error: ...`` on stderr naming the option or file and the fault, exit status 2 (usage) or 1 (data), no
traceback, and nothing new or half-written where the command would write."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deepreco.cli import app
from deepreco.io import write_event, write_submission
from deepreco.metrics import add_weights
from deepreco.modelfile import SHIPPED

runner = CliRunner()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A folder of good and bad inputs; every case writes (or would write) inside it."""
    from conftest import make_tiny_event

    base = tmp_path_factory.mktemp("bad")
    event = make_tiny_event()
    event.truth = add_weights(event.truth, event.particles)
    write_event(event, base / "ev")  # the tiny event: barrel layer 10 of volume 8 is no TrackML layer
    sub = event.truth[["hit_id", "particle_id"]].rename(columns={"particle_id": "track_id"})
    write_submission(sub, base / "sub.csv")
    (base / "huge.csv").write_text("hit_id,track_id\n1,9223372036854775808\n2,1\n")
    (base / "notes.txt").write_text("a note, not an event, a model or a submission\n")
    (base / "afile").write_text("x")
    (base / "adir").mkdir()
    (base / "adir.png").mkdir()
    (base / "emptydir").mkdir()
    with zipfile.ZipFile(base / "empty.zip", "w") as zf:
        zf.writestr("README.txt", "no event here")
    with zipfile.ZipFile(base / "ok.zip", "w") as zf:
        for path in sorted((base / "ev").iterdir()):
            zf.write(path, f"a/{path.name}")
    with zipfile.ZipFile(base / "twice.zip", "w") as zf:  # two events of one id, in two folders
        for folder in ("a", "b"):
            for path in sorted((base / "ev").iterdir()):
                zf.write(path, f"{folder}/{path.name}")
    whole = (base / "ok.zip").read_bytes()
    (base / "truncated.zip").write_bytes(whole[: len(whole) // 2])
    (base / "repo").mkdir()
    return base


def _listing(folder: Path) -> dict:
    """Every path under ``folder`` (hidden ones too) with its size: a new, removed or changed file shows."""
    return {str(p.relative_to(folder)): (p.stat().st_size if p.is_file() else -1) for p in folder.rglob("*")}


EV = "{base}/ev/event000000042"
# (arguments, exit status, text the one line must hold). {base} is the folder of the inputs; outputs go in it;
# {models} the shipped models.
CASES = [
    # info
    (["info", "{base}/notes.txt"], 1, "notes.txt: not an event file"),
    (["info", "{base}/emptydir"], 1, "emptydir: holds no event"),
    (["info", "{base}/empty.zip"], 1, "empty.zip: holds no event"),
    (["info", "{base}/truncated.zip"], 1, "truncated.zip: corrupt or truncated zip"),
    (["info", "{base}/nothing"], 1, "nothing: no such file"),
    (["info", "{base}/ev", "--bogus"], 2, "--bogus"),
    (["info"], 2, "Missing argument"),
    (["methods", "extra"], 2, "extra"),
    # score
    (["score", EV, "{base}/huge.csv"], 1, "huge.csv: column track_id has a value 9223372036854775808 that does not "
                                          "fit a 64-bit integer"),
    (["score", EV, "{base}/notes.txt"], 1, "notes.txt"),
    (["score", EV, "{base}/sub.csv", "--pt-min", "nan"], 2, "--pt-min"),
    (["score", EV, "{base}/sub.csv", "--pt-min", "-1"], 2, "--pt-min"),
    (["score", EV, "{base}/sub.csv", "--plot", "{base}/afile/eff.png"], 2, "afile, which is a file"),
    (["score", EV, "{base}/sub.csv", "--plot", "/proc/eff.png"], 2, "cannot write in /proc"),
    (["score", EV, "{base}/sub.csv", "--plot", "{base}/eff.txt"], 2, "an image needs one of the suffixes"),
    (["score", EV, "{base}/sub.csv", "--plot", "{base}/adir.png"], 2, "adir.png is a folder"),
    (["score", "{base}/emptydir", "{base}/sub.csv"], 1, "holds no event"),
    # display
    (["display", EV, "--out", "{base}/afile/d.png"], 2, "afile, which is a file"),
    (["display", EV, "--out", "/proc/d.png"], 2, "cannot write in /proc"),
    (["display", EV, "--out", "/sys/d.png"], 2, "cannot write in /sys"),
    (["display", EV, "--out", "{base}/d.jpgx"], 2, "--out"),
    (["display", EV, "--out", "{base}/d.png", "--tracks", "{base}/huge.csv"], 1, "does not fit a 64-bit"),
    (["display", EV, "--out", "{base}/d.png", "--colour-by", "mood"], 2, "'mood' is not one of"),
    (["display", "{base}/nothing", "--out", "{base}/d.png"], 1, "nothing: no such file"),
    # reconstruct
    *[(["reconstruct", EV, "-m", m, "--out", "{base}/subs"], 1, f"method {m} reads events of the TrackML detector "
       "only, and 3 of 18") for m in ("ckf", "dbscan", "lstm", "gnn")],
    (["reconstruct", "{base}/twice.zip", "-m", "truth", "--out", "{base}/subs"], 1, "event id 42 appears 2 times"),
    (["info", "{base}/twice.zip"], 1, "twice.zip: event id 42 appears 2 times (a/event000000042, b/event000000042)"),
    (["evaluate", "{base}/twice.zip", "-m", "truth"], 1, "twice.zip: event id 42 appears 2 times"),
    (["reconstruct", EV, "-m", "nosuch", "--out", "{base}/subs"], 1, "nosuch"),
    (["reconstruct", EV, "-m", "truth", "--out", "{base}/afile"], 2, "afile is a file, not a folder"),
    (["reconstruct", EV, "-m", "truth", "--out", "{base}/afile/subs"], 2, "afile, which is a file"),
    (["reconstruct", EV, "-m", "truth", "--out", "/proc/subs"], 2, "cannot write in /proc"),
    (["reconstruct", EV, "-m", "lstm", "--model", "{base}/notes.txt", "--out", "{base}/subs"], 1,
     "notes.txt: not a deepreco model file"),
    (["reconstruct", EV, "-m", "lstm", "--model", "{base}/adir", "--out", "{base}/subs"], 1, "adir: is a folder"),
    (["reconstruct", EV, "-m", "lstm", "--model", "{base}/truncated.zip", "--out", "{base}/subs"], 1,
     "truncated.zip: not a deepreco model file (a corrupt or truncated zip"),
    (["reconstruct", EV, "-m", "lstm", "--model", "{base}/none.pt", "--out", "{base}/subs"], 1,
     "none.pt: no such model file"),
    (["reconstruct", EV, "-m", "truth", "--out", "{base}/subs", "--events", "0"], 2, "--events"),
    (["reconstruct", EV, "-m", "truth", "--out", "{base}/subs", "--workers", "0"], 2, "--workers"),
    (["reconstruct", EV, "-m", "truth", "--out", "{base}/subs", "-j", "-1"], 2, "--workers"),
    (["reconstruct", "{base}/truncated.zip", "-m", "truth", "--out", "{base}/subs"], 1, "truncated zip"),
    (["reconstruct", "{base}/emptydir", "-m", "truth", "--out", "{base}/subs"], 1, "holds no event"),
    # evaluate
    (["evaluate", EV, "-m", "truth", "--pt-min", "inf"], 2, "--pt-min"),
    (["evaluate", EV, "-m", "truth", "--events", "-3"], 2, "--events"),
    (["evaluate", "{base}/empty.zip", "-m", "truth"], 1, "empty.zip: holds no event"),
    (["evaluate", EV, "-m", "ckf"], 1, "method ckf reads events of the TrackML detector only"),
    (["evaluate", EV, "-m", "lstm", "--model", "{base}/notes.txt"], 1, "not a deepreco model file"),
    # simulate
    *[(["simulate", "-g", "gun", "--out", "{base}/sim", *extra], 2, needle) for extra, needle in [
        (["--seed", "-1"], "--seed"), (["--pileup", "nan"], "--pileup"), (["--pileup", "1e12"], "--pileup"),
        (["--pileup", "-1"], "--pileup"), (["--events", "0"], "--events"), (["--first-event-id", "-5"],
                                                                            "--first-event-id"),
        (["--set", "n=abc"], "option n=abc of generator 'gun': n takes whole numbers"),
        (["--set", "n=2.5"], "n takes whole numbers"), (["--set", "n"], "--set n: expected KEY=VALUE"),
        (["--set", "pt=nan"], "pt takes finite numbers"), (["--noise", "1.5"], "--noise"),
        (["--workers", "0"], "--workers"), (["--format", "xml"], "'xml' is not one of csv, csv.gz, parquet")]],
    (["simulate", "-g", "gun", "--out", "{base}/afile"], 2, "afile is a file, not a folder"),
    (["simulate", "-g", "gun", "--out", "{base}/afile/sim"], 2, "afile, which is a file"),
    (["simulate", "-g", "gun", "--out", "/proc/deepreco"], 2, "cannot write in /proc"),
    (["simulate", "-g", "ttbar", "--set", "mu=1e12", "--out", "{base}/sim"], 2, "pile-up mu must be a number"),
    (["simulate", "-g", "trackml", "--particles", "{base}/notes.txt", "--out", "{base}/sim"], 1, "notes.txt"),
    (["simulate", "-g", "trackml", "--particles", "{base}/none.csv", "--out", "{base}/sim"], 1,
     "none.csv: no such file"),
    (["simulate", "-g", "nosuch", "--out", "{base}/sim"], 1, "unknown generator 'nosuch'"),
    (["simulate", "-g", "gun", "--scheduler", "garbage", "--out", "{base}/sim"], 1, "--scheduler garbage"),
    # demo
    (["demo", "--out", "{base}/afile/demo.png"], 2, "afile, which is a file"),
    (["demo", "--out", "{base}/demo.png", "--seed", "-1"], 2, "--seed"),
    (["demo", "--out", "{base}/demo.txt"], 2, "an image needs one of the suffixes"),
    # export, serve
    (["export", "lstm", "--out", "{base}/afile"], 2, "afile is a file, not a folder"),
    (["export", "lstm", "--out", "{base}/onnx", "--model", "{base}/notes.txt"], 1, "not a deepreco model file"),
    (["export", "lstm"], 2, "give one of --out DIR"),
    (["export", "lstm", "--triton", "/proc/repo"], 2, "cannot write in /proc"),
    (["serve", "{base}/notes.txt"], 1, "notes.txt: is a file, not a model repository"),
    (["serve", "{base}/repo", "--port", "0"], 2, "--port"),
    (["serve", "{base}/repo", "--port", "70000"], 2, "--port"),
    (["serve", "{base}/repo", "--threads", "0"], 2, "--threads"),
    # train
    (["train", "lstm", "--out", "{base}/afile/m.pt"], 2, "afile, which is a file"),
    (["train", "lstm", "--out", "{base}/adir"], 2, "adir is a folder; give a file name"),
    (["train", "lstm", "--out", "{base}/m.pt", "--epochs", "0"], 2, "--epochs"),
    (["train", "lstm", "--out", "{base}/m.pt", "--val-fraction", "1.5"], 2, "--val-fraction"),
    (["train", "lstm", "--out", "{base}/m.pt", "--resume", "{base}/notes.txt"], 1,
     "notes.txt: not a deepreco checkpoint file"),
    (["train", "lstm", "--out", "{base}/m.pt", "--config", "{base}/none.yaml"], 1, "none.yaml: no such settings file"),
    (["train", "lstm", "--out", "{base}/m.pt", "--seed", "-1"], 2, "--seed"),
    (["train", "gnn", "--out", "{base}/m.pt", "--gnn-epochs", "0"], 2, "--gnn-epochs"),
    (["train", "gnn", "--out", "{base}/m.pt", "--start-from", "{base}/notes.txt"], 1, "not a deepreco model file"),
    (["train", "gnn", "--out", "/proc/gnn.pt"], 2, "cannot write in /proc"),
    # an existing file may be replaced by a new model (--out afile passes), but a binary file is no YAML settings
    (["train", "gnn", "--out", "{base}/afile", "--config", "{base}/twice.zip"], 1, "twice.zip: not a YAML text file"),
    (["train", "embedding", "--out", "{base}/m.pt", "--efficiency", "0"], 2, "--efficiency"),
    (["train", "embedding", "--out", "{base}/m.pt", "--k-max", "0"], 2, "--k-max"),
    # calo
    (["calo", "evaluate", "--events", "0"], 2, "--events"),
    (["calo", "evaluate", "--pileup", "nan"], 2, "--pileup"),
    (["calo", "evaluate", "--plots", "{base}/afile"], 2, "afile is a file, not a folder"),
    (["calo", "evaluate", "--models-dir", "{base}/notes.txt"], 1, "notes.txt: is a file, not a folder"),
    (["calo", "evaluate", "--workers", "0"], 2, "--workers"),
    (["calo", "train", "--steps", "-1", "--out", "{base}/calo"], 2, "--steps"),
    (["calo", "train", "--val-events", "0", "--out", "{base}/calo"], 2, "--val-events"),
    (["calo", "train", "--out", "{base}/afile"], 2, "afile is a file, not a folder"),
    (["calo", "train", "--pileup", "1e12", "--out", "{base}/calo"], 2, "--pileup"),
    (["calo", "train", "--resume", "{base}/notes.txt", "--out", "{base}/calo"], 1, "not a deepreco checkpoint"),
    (["calo", "evaluate", "--methods", "nosuch"], 1, "unknown calorimeter method 'nosuch'"),
    (["calo", "evaluate", "--source", "nosuch"], 1, "unknown particle source 'nosuch'"),
    (["calo", "train", "--models", "nosuch", "--out", "{base}/calo"], 1, "unknown calorimeter network 'nosuch'"),
    (["calo", "train", "--config", "{base}/adir", "--out", "{base}/calo"], 1, "adir: is a folder, not a settings file"),
    (["calo", "nosuch"], 2, "No such command 'nosuch'"),
    # deepcore
    (["deepcore", "train", "--max-steps", "0", "--out", "{base}/dc.pt"], 2, "--max-steps"),
    (["deepcore", "train", "--out", "{base}/adir"], 2, "adir is a folder"),
    (["deepcore", "train", "--lr-scale", "nan", "--out", "{base}/dc.pt"], 2, "--lr-scale"),
    (["deepcore", "train", "--work", "{base}/afile", "--out", "{base}/dc.pt"], 2, "afile is a file, not a folder"),
    (["deepcore", "evaluate", "--model", "{base}/notes.txt"], 1, "not a deepreco model file"),
    (["deepcore", "evaluate", "--model", "{models}/lstm_tracks.pt"], 1, "a model of kind 'lstm', expected kind "
                                                                     "'deepcore'"),
    (["deepcore", "evaluate", "--pileup", "inf"], 2, "--pileup"),
    (["deepcore", "evaluate", "--plots", "/proc/plots"], 2, "cannot write in /proc"),
    (["deepcore", "evaluate", "--clean-xy", "-1"], 2, "--clean-xy"),
    # fit
    (["fit", "{base}/nosuch", "--tracks", "{base}/sub.csv"], 1, "nosuch: no such file or event prefix"),
    (["fit", EV, "--tracks", "{base}/sub.csv", "--out", "{base}/adir"], 2, "adir is a folder"),
    (["fit", EV, "--tracks", "{base}/absent.csv"], 1, "absent.csv: no such file"),
    (["fit", EV, "--tracks", "{base}/sub.csv", "--threads", "0"], 2, "--threads"),
    # toys
    (["toys", "benchmark", "--threads", "-1"], 2, "--threads"),
    (["toys", "benchmark", "--out", "{base}/afile"], 2, "afile is a file, not a folder"),
    (["toys", "benchmark", "--seed", "-1"], 2, "--seed"),
    (["toys", "benchmark", "--models", "nosuch"], 1, "unknown toy model 'nosuch'"),
    (["nosuch"], 2, "No such command 'nosuch'"),
]


def _case_id(case) -> str:
    args = case[0]
    return " ".join(a.replace("{base}/", "") for a in args)[:60]


@pytest.mark.parametrize("args, code, needle", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(base, monkeypatch, args, code, needle):
    monkeypatch.chdir(base)  # the commands' default outputs (calo_models, deepcore.pt, ...) land here too
    before = _listing(base)
    result = runner.invoke(app, [a.format(base=base, models=SHIPPED) for a in args])
    err = result.stderr
    assert result.exit_code == code, (result.exit_code, err, result.stdout)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in result.output and "internal error" not in lines[0], result.output
    assert _listing(base) == before


def test_the_cases_cover_every_command():
    """Each command that `deepreco --help` and its groups list has at least one case here."""
    from typer.main import get_command

    def commands(group, prefix=()):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from commands(cmd, (*prefix, name))
            else:
                yield (*prefix, name)

    tested = {tuple(args[:2]) if args[0] in ("train", "calo", "deepcore", "toys") else (args[0],)
              for args, _, _ in CASES}
    assert set(commands(get_command(app))) <= tested
    assert len(CASES) >= 60


def _cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "deepreco", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_real_exit_codes_and_stderr(base):
    """Run as a user does: the process's own exit status and stderr."""
    usage = _cli("simulate", "-g", "gun", "--seed", "-1", "--out", str(base / "sim"))
    assert usage.returncode == 2 and usage.stdout == ""
    assert usage.stderr.count("\n") == 1 and usage.stderr.startswith("error: Invalid value for '--seed'")
    data = _cli("info", str(base / "truncated.zip"))
    assert data.returncode == 1 and data.stderr == f"error: {base / 'truncated.zip'}: corrupt or truncated zip " \
                                                   "archive (no central directory)\n"
    path = _cli("reconstruct", str(base / "ev"), "-m", "truth", "--out", "/proc/subs")
    assert path.returncode == 2 and path.stderr.count("\n") == 1 and "cannot write in /proc" in path.stderr
    assert not (base / "sim").exists()


def test_debug_shows_the_traceback(base):
    """DEEPRECO_DEBUG=1: the one line still ends the output, the traceback behind it comes first."""
    result = _cli("info", str(base / "notes.txt"), DEEPRECO_DEBUG="1")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_a_good_zip_and_folder_still_read(base):
    """The checks refuse only what is wrong: the same event as a zip, and a folder of it, are read."""
    for path in (base / "ok.zip", base / "ev"):
        result = runner.invoke(app, ["info", str(path), "--json"])
        assert result.exit_code == 0, result.output
    out = base / "subs-ok"
    result = runner.invoke(app, ["reconstruct", str(base / "ok.zip"), "-m", "truth", "--out", str(out)])
    assert result.exit_code == 0 and [p.name for p in out.iterdir()] == ["event000000042-submission.csv"]


def test_dataset_refuses_two_events_of_one_id(base, tmp_path):
    """In a folder as in a zip: reading by id would pick one of them, and their outputs would collide."""
    from deepreco.errors import FormatError
    from deepreco.io import Dataset

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for path in sorted((base / "ev").iterdir()):
            (tmp_path / folder / path.name).write_bytes(path.read_bytes())
    for source in (tmp_path, base / "twice.zip"):
        with pytest.raises(FormatError, match=r"event id 42 appears 2 times \(a/event000000042, b/event000000042\)"):
            Dataset(source)
    assert Dataset(tmp_path / "a").event_ids == [42]  # one of them alone reads


# Run inside a private mount namespace (``unshare -rm``: as root of a new user namespace, so no real privilege is
# needed) where ``ro`` is a read-only tmpfs: the commands get EROFS, as on a read-only mount of a real machine.
_RO_DRIVER = """
import json, os, subprocess, sys
ro, cases = sys.argv[1], json.loads(sys.argv[2])
out = {"access": os.access(ro, os.W_OK), "uid": os.geteuid(), "runs": []}
for args in cases:
    run = subprocess.run([sys.executable, "-m", "deepreco", *args], capture_output=True, text=True, timeout=120)
    out["runs"].append([run.returncode, run.stderr])
out["left"] = os.listdir(ro)
print(json.dumps(out))
"""


def test_read_only_file_system(base, tmp_path):
    """A real read-only mount: each command stops with one line naming the output, writes nothing."""
    import json
    import shutil

    ro = tmp_path / "ro"
    ro.mkdir()
    mount = f"mount -t tmpfs -o ro none {ro}"
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) here to make a private read-only mount")
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", mount], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"a private read-only mount is not permitted here: {probe.stderr.strip()}")
    cases = [["simulate", "-g", "gun", "--events", "1", "--out", f"{ro}/sim"],
             ["reconstruct", f"{base}/ev", "-m", "truth", "--out", f"{ro}/subs"],
             ["display", f"{base}/ev/event000000042", "--out", f"{ro}/d.png"],
             ["train", "lstm", "--out", f"{ro}/m.pt"]]
    run = subprocess.run(["unshare", "-rm", "sh", "-c", f'{mount} && exec "$0" -c "$1" "$2" "$3"', sys.executable,
                          _RO_DRIVER, str(ro), json.dumps(cases)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    # root of the namespace: os.access looks at the mount too (EROFS), as it does not at permission bits
    assert result["uid"] == 0 and result["access"] is False
    for args, (code, err) in zip(cases, result["runs"], strict=True):
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (args, code, err)
        assert lines[0].startswith("error: ") and f"cannot write in {ro} (Read-only file system)" in lines[0], lines
    assert result["left"] == [] and list(ro.iterdir()) == []


def test_integer_ranges_are_said_as_the_other_numbers_are(base):
    """typer's own check of min= / max= ("Input should be greater than or equal to 1") in the words of
    `deepreco.validate.finite`, naming the option."""
    cases = [(["reconstruct", EV, "-m", "truth", "--out", "{base}/subs", "--events", "0"],
              "Invalid value for '--events' / '-n': 0 is not in the range x >= 1"),
             (["simulate", "-g", "gun", "--seed", "-1", "--out", "{base}/sim"],
              "Invalid value for '--seed': -1 is not in the range x >= 0"),
             (["serve", "{base}/repo", "--port", "70000"], "Invalid value for '--port': 70000 is not in the range "
                                                           "x <= 65534"),
             (["score", EV, "{base}/sub.csv", "--pt-min", "-1"], "Invalid value for '--pt-min': -1 is not in the "
                                                                 "range x >= 0")]
    for args, text in cases:
        result = runner.invoke(app, [a.format(base=base) for a in args])
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {text} (see "), result.stderr


def test_a_failed_write_leaves_none_of_the_folders_it_made(tmp_path):
    """`made_folder`: the folders made for an output go again, deepest first, when the block raises, unless
    something was written in them; a folder that was there before stays."""
    from deepreco.paths import made_folder

    (tmp_path / "old").mkdir()
    with pytest.raises(KeyboardInterrupt), made_folder(tmp_path / "old" / "a" / "b") as out:
        assert out.is_dir()
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == [tmp_path / "old"] and list((tmp_path / "old").iterdir()) == []
    with pytest.raises(ValueError), made_folder(tmp_path / "old" / "a" / "b") as out:
        (tmp_path / "old" / "a" / "kept.txt").write_text("written")
        raise ValueError
    assert [p.name for p in (tmp_path / "old" / "a").iterdir()] == ["kept.txt"]
    with made_folder(tmp_path / "c" / "d") as out:
        pass
    assert out.is_dir()


def test_a_model_file_stopped_while_written_leaves_no_folder(tmp_path, monkeypatch):
    """A model file written into new folders and stopped there (Ctrl-C in ``torch.save``): no file, no folder."""
    import torch

    from deepreco.modelfile import atomic_save

    def stopped(payload, path):
        Path(path).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", stopped)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"a": 1}, tmp_path / "runs" / "new" / "model.pt")
    assert list(tmp_path.iterdir()) == []

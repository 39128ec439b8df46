"""Interrupting commands for real: `simulate` on two Dask workers, `reconstruct` and a training, each a
subprocess in its own session, stopped with SIGKILL, SIGINT or SIGTERM. Checked: SIGINT and SIGTERM end the
command within 2 s of the signal; no process of the session is left (workers, resource tracker); no temporary
file; a rerun with ``--resume`` gives the same bytes (the training: the same weights) as a run never stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
import yaml

from deepreco.io import TEMPORARY

DEEPRECO = [sys.executable, "-m", "deepreco"]
SIM = ["-g", "gun", "--set", "n=20", "--seed", "11", "--format", "csv.gz"]
N_EVENTS = 16  # enough that two workers are still busy when the signal comes
N_RECO = 5  # ckf takes about a second an event on these (real noise rates)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
STOP_SECONDS = 2.0  # the promise: SIGINT and SIGTERM end any command within this


def _cli(*args) -> str:
    """``deepreco ARGS`` in this process (no new interpreter to start): its output; exit 0 asserted."""
    from typer.testing import CliRunner

    from deepreco.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _temporaries(*folders: Path) -> list[str]:
    return [p.name for f in folders if f.is_dir() for p in f.iterdir() if TEMPORARY.match(p.name)]


def _alive_in_session(sid: int) -> list[str]:
    """The processes of session ``sid`` that still run (a zombie has ended: only its exit status is left)."""
    alive = []
    for proc in psutil.process_iter(["pid", "name", "status"]):
        try:
            if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {proc.info['name']}")
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            pass
    return alive


def _stop(args, ready, sig, timeout=180) -> tuple[int, float, str]:
    """Start ``deepreco ARGS`` in a session of its own, send ``sig`` once ``ready()`` holds; (exit status,
    seconds from the signal to the exit, stderr). Whatever happens, nothing of the session outlives the test."""
    proc = subprocess.Popen([*DEEPRECO, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ENV, start_new_session=True)
    try:
        end = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"ended before the signal: {proc.stderr.read()}"
            assert time.monotonic() < end, "timed out waiting for the command to get going"
            time.sleep(0.05)
        start = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        seconds = time.monotonic() - start
        end = time.monotonic() + 5  # a SIGKILLed parent's workers see it within moments
        while (left := _alive_in_session(proc.pid)) and time.monotonic() < end:
            time.sleep(0.1)
        assert left == [], f"left running after {sig.name}: {left}"
        return proc.returncode, seconds, err
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def _check_exit(sig, code: int, seconds: float, err: str) -> None:
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 128 + sig and seconds < STOP_SECONDS, (code, seconds, err)
        assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, Path]:
    """The runs never stopped: the events (one process) and ckf's submissions of the first N_RECO."""
    base = tmp_path_factory.mktemp("reference")
    _cli("simulate", *SIM, "-n", N_EVENTS, "--out", base / "events", "--threads", "1")
    _cli("reconstruct", base / "events", "-m", "ckf", "-n", N_RECO, "--out", base / "tracks", "--threads", "1")
    return {"events": base / "events", "tracks": base / "tracks"}


def _written(folder: Path, pattern: str) -> int:
    return len(list(folder.glob(pattern))) if folder.is_dir() else 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_stopped_simulate_on_two_workers_leaves_nothing_and_resumes(sig, reference, tmp_path):
    out = tmp_path / "events"
    code, seconds, err = _stop(["simulate", *SIM, "-n", N_EVENTS, "--out", out, "--workers", "2"],
                               lambda: _written(out, "*-truth.csv.gz") >= 2, sig)
    _check_exit(sig, code, seconds, err)
    assert _temporaries(out) == []
    assert _written(out, "*-hits.csv.gz") < N_EVENTS, "the run ended before the signal"
    done = _written(out, "*-hits.csv.gz")
    output = _cli("simulate", *SIM, "-n", N_EVENTS, "--out", out, "--resume", "--threads", "1")
    assert f"events: {N_EVENTS - done} in" in output
    assert _files(out) == _files(reference["events"])


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=lambda s: s.name)
def test_stopped_reconstruct_leaves_nothing_and_resumes(sig, reference, tmp_path):
    out = tmp_path / "tracks"
    args = ["reconstruct", reference["events"], "-m", "ckf", "-n", N_RECO, "--out", out, "--threads", "1"]
    code, seconds, err = _stop(args, lambda: _written(out, "*-submission.csv") >= 1, sig)
    _check_exit(sig, code, seconds, err)
    assert _temporaries(out) == []
    done = _written(out, "*-submission.csv")
    assert 1 <= done < N_RECO, "the run ended before the signal"
    if sig != signal.SIGKILL:  # one line: what is kept and how to go on
        assert err.strip().splitlines()[-1].endswith(f"error: stopped by SIGINT; {done} of the {N_RECO} submissions "
                                                     "are written, and --resume reconstructs only the missing ones")
    assert f"wrote {N_RECO - done} submission(s)" in _cli(*args, "--resume")
    assert _files(out) == _files(reference["tracks"])


@pytest.fixture(scope="module")
def lstm_config(tmp_path_factory, reference) -> Path:
    """A tiny LSTM on 3 of the reference events: 4 epochs of 13 steps, a checkpoint every 4 steps."""
    folder = tmp_path_factory.mktemp("config")
    data = folder / "events"
    data.mkdir()
    for path in reference["events"].iterdir():
        if path.name < "event000000003":
            (data / path.name).write_bytes(path.read_bytes())
    settings = folder / "lstm.yaml"
    settings.write_text(yaml.safe_dump({"data": str(data), "epochs": 4, "seed": 3, "hidden": [16], "batch_size": 4,
                                        "learning_rate": 0.01, "checkpoint_every_steps": 4}))
    return settings


@pytest.fixture(scope="module")
def lstm_whole(lstm_config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "lstm.pt"
    _cli("train", "lstm", "--config", lstm_config, "--out", out, "--threads", "1")
    return out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=lambda s: s.name)
def test_stopped_training_leaves_nothing_and_resumes_to_the_same_weights(sig, lstm_config, lstm_whole, tmp_path):
    from deepreco.modelfile import load

    out = tmp_path / "lstm.pt"
    ckpts = out.with_name("lstm.pt.checkpoints")
    code, seconds, err = _stop(["train", "lstm", "--config", lstm_config, "--out", out, "--threads", "1"],
                               lambda: (ckpts / "step000004.ckpt").exists(), sig)
    _check_exit(sig, code, seconds, err)
    assert not out.exists() and _temporaries(tmp_path, ckpts) == []
    checkpoint = ckpts / "last.ckpt"
    if sig == signal.SIGINT:  # the one line names the checkpoint to go on from (last.ckpt unless it fell just before)
        checkpoint = Path(err.strip().splitlines()[-1].split("resume with --resume ")[1])
        assert checkpoint.is_file(), err
    elif not checkpoint.exists():  # killed between a step's checkpoint and its copy as last.ckpt
        checkpoint = max(ckpts.glob("*.ckpt"), key=lambda p: p.stat().st_mtime_ns)
    _cli("train", "lstm", "--out", out, "--resume", checkpoint, "--threads", "1")
    resumed, whole = load(out, "lstm"), load(lstm_whole, "lstm")
    assert resumed.record["train_loss"] == whole.record["train_loss"]
    assert all(torch.equal(resumed.weights["net"][k], w) for k, w in whole.weights["net"].items())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_stopped_export_says_so_and_leaves_no_folder(sig, tmp_path):
    """The ONNX export stopped after its first network: one line, within 2 s (the interpreter's teardown after
    torch's exporter takes longer: skipped), and neither the folder nor the new folder above it is left."""
    out = tmp_path / "new" / "onnx"
    code, seconds, err = _stop(["export", "all", "--out", out], lambda: any((tmp_path / "new").glob(".onnx.*/*.onnx")),
                               sig)
    _check_exit(sig, code, seconds, err)
    assert err.strip().splitlines()[-1].endswith(f"error: stopped by {sig.name}"), err
    assert list(tmp_path.iterdir()) == []


def test_local_cluster_workers_are_set_to_die_with_their_parent():
    """The kernel holds SIGKILL for each worker of a LocalCluster, to send when the process that started it ends
    (prctl PR_GET_PDEATHSIG, read on the workers), even if that process is SIGKILLed with no time to close."""
    from deepreco.distributed import EventRunner

    with EventRunner(2) as runner:
        got = runner.client.run(_pdeathsig)
        parents = set(runner.client.run(os.getppid).values())
    assert sorted(got.values()) == [signal.SIGKILL, signal.SIGKILL] and parents == {os.getpid()}


def _pdeathsig() -> int:
    import ctypes

    value = ctypes.c_int(0)
    ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
    return value.value


def test_a_failed_event_is_named_on_its_own_line_and_resume_does_the_rest(reference, tmp_path):
    """One event that cannot be read: the others are written, the error names that one on its own line (exit 1),
    and once it is repaired --resume reconstructs it alone."""
    import shutil

    events = tmp_path / "events"
    shutil.copytree(reference["events"], events)
    names = sorted(p.name for p in events.glob("*-hits.csv.gz"))[:3]
    broken = events / names[1]
    good = broken.read_bytes()
    broken.write_bytes(good[: len(good) // 2])  # a truncated gzip
    out = tmp_path / "tracks"
    r = subprocess.run([*DEEPRECO, "reconstruct", events, "-m", "truth", "-n", "3", "--out", out], env=ENV,
                       capture_output=True, text=True, timeout=120)
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("truth: 3 in")]
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("error: 1 of 3 events (truth) failed; the other 2 submissions are written"), r.stderr
    assert len(lines) == 2 and lines[1].startswith(f"  event 1: {broken}: truncated or corrupt file"), r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["event000000000-submission.csv", "event000000002-submission.csv"]
    broken.write_bytes(good)
    assert "wrote 1 submission(s)" in _cli("reconstruct", events, "-m", "truth", "-n", "3", "--out", out, "--resume")


@pytest.mark.parametrize("command", [["reconstruct", "x", "-m", "truth", "--out", "y"], ["evaluate", "x", "-m", "ckf"],
                                     ["simulate", "-g", "gun", "--out", "y"], ["demo"], ["train", "lstm", "--out", "y"],
                                     ["train", "gnn", "--out", "y"], ["train", "embedding", "--out", "y"],
                                     ["calo", "evaluate"], ["calo", "train"], ["deepcore", "train"],
                                     ["deepcore", "evaluate"], ["toys", "benchmark"]], ids=" ".join)
def test_threads_below_one_is_one_line_before_any_work(command, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from deepreco.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [*command, "--threads", "0"])
    assert result.exit_code == 2, result.output  # a usage error, found while the command line is parsed
    assert result.output.startswith("error: Invalid value for '--threads'") and result.output.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_threads_set_torch_and_the_default_leaves_a_busy_core_alone(monkeypatch):
    from deepreco.threads import default_threads, set_threads, usable_cores

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # restored after
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
        hog = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.2)
            assert 1 <= default_threads() <= max(1, usable_cores() - 1)  # the hog is always ready to run
        finally:
            hog.kill()
            hog.wait()
    finally:
        torch.set_num_threads(before)

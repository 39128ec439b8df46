"""Events on Dask: a real `dask scheduler` and two `dask worker` processes on localhost, killed workers and
clients, resumed runs, and the same bytes and figures as one process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from deepreco.io import TEMPORARY, Dataset

N_EVENTS = 24
SIM = ["-g", "gun", "--set", "n=20", "-n", str(N_EVENTS), "--seed", "7", "--format", "csv.gz"]
DEEPRECO = [sys.executable, "-m", "deepreco"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if TEMPORARY.match(p.name)] if folder.is_dir() else []


def _cli(*args, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*DEEPRECO, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs)


def _wait_for(condition, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _events_written(folder: Path) -> int:
    return len(list(folder.glob("*-hits.csv.gz"))) if folder.is_dir() else 0


def _without(value, keys):
    """A JSON value without the given keys, at any depth."""
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill a process started in its own session, and everything in that session."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The run in one process, as the bytes to match."""
    out = tmp_path_factory.mktemp("reference") / "events"
    r = _cli("simulate", *SIM, "--out", out)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture
def cluster(tmp_path):
    """A `dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays dead) on free
    localhost ports; all killed at the end, whatever happened."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = {}
    common = {"cwd": tmp_path, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    try:
        procs["scheduler"] = subprocess.Popen(["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                               "--no-dashboard"], **common)
        for name in ("worker-a", "worker-b"):
            procs[name] = subprocess.Popen(["dask", "worker", address, "--nthreads", "1", "--no-nanny",
                                            "--no-dashboard", "--memory-limit", "0", "--name", name], **common)
        end = time.monotonic() + 60
        while True:  # the scheduler takes a moment to listen
            try:
                client = Client(address, timeout=5, set_as_default=False)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.5)
        try:
            client.wait_for_workers(2, timeout=60)
            pids = client.run(os.getpid)
        finally:
            client.close()
        yield {"address": address, "procs": procs, "worker_pids": sorted(pids.values())}
    finally:
        for proc in procs.values():
            _kill_tree(proc)


def test_simulate_and_evaluate_on_a_cluster_with_a_worker_killed(cluster, reference, tmp_path):
    from distributed import Client

    # evaluate on the two workers: the very figures of one process, and each worker built the method (and
    # loaded the LSTM models) once, not once per event
    one = _cli("evaluate", reference, "-m", "ckf", "-m", "lstm", "-n", "4", "--json")
    two = _cli("evaluate", reference, "-m", "ckf", "-m", "lstm", "-n", "4", "--json", "--scheduler", cluster["address"])
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    one, two = json.loads(one.stdout), json.loads(two.stdout)
    for method in ("ckf", "lstm"):
        times = ("seconds_per_event", "cpu_seconds_per_event")
        assert {k: v for k, v in one[method].items() if k not in times} == \
               {k: v for k, v in two[method].items() if k not in times}
        assert two[method]["n_events"] == 4
    with Client(cluster["address"], timeout=5, set_as_default=False) as client:
        builds = client.run(lambda: __import__("deepreco.distributed").distributed.builds())
        models = client.run(lambda: [k for k in __import__("deepreco.modelfile").modelfile._CACHE
                                     if "load_model" in k])
    assert sum(count for b in builds.values() for key, count in b.items() if key.startswith("method:lstm")) <= 2
    assert all(count == 1 for b in builds.values() for count in b.values())
    # lstm runs the shipped ensemble of four by default: each worker holds at most those four models
    assert all(len(m) <= 4 for m in models.values()) and sum(map(len, models.values())) >= 4

    # the calorimeter's and DeepCore's event loops too: the same figures (all but the times) on the cluster
    timing = ("seconds_per_event", "cpu_seconds_per_event", "peak_memory_mb", "stages")
    for command in (["calo", "evaluate", "--events", "3", "--methods", "clue,gravnet"],
                    ["deepcore", "evaluate", "--events", "2"]):
        one = _cli(*command, "--json")
        two = _cli(*command, "--json", "--scheduler", cluster["address"])
        assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
        assert _without(json.loads(one.stdout), timing) == _without(json.loads(two.stdout), timing)

    # simulate on the cluster and SIGKILL one worker mid-run: its events run on the other, the run finishes,
    # every event is there once, byte for byte the one-process run, and no temporary file stays
    out = tmp_path / "events"
    run = subprocess.Popen([*DEEPRECO, "simulate", *SIM, "--out", str(out), "--scheduler", cluster["address"]],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _events_written(out) >= 3, 120, "the first events")
        assert _events_written(out) < N_EVENTS, "the run ended before a worker could be killed"
        os.kill(cluster["procs"]["worker-a"].pid, signal.SIGKILL)
        _, err = run.communicate(timeout=180)
    finally:
        run.kill()
    assert run.returncode == 0, err
    assert cluster["procs"]["worker-a"].wait(timeout=5) == -signal.SIGKILL
    assert _files(out) == _files(reference)
    assert len(Dataset(out)) == N_EVENTS and _temporaries(out) == []


def test_killed_client_leaves_no_process_and_resume_does_the_rest(reference, tmp_path):
    out = tmp_path / "events"
    run = subprocess.Popen([*DEEPRECO, "simulate", *SIM, "--out", str(out), "--workers", "2"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _events_written(out) >= 2, 120, "the first events")
        children = psutil.Process(run.pid).children(recursive=True)
        assert len(children) >= 2  # the LocalCluster's worker processes
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"left behind: {alive}"
    finally:
        run.kill()
    complete = {p.name.split("-")[0] for p in out.glob("*-hits.csv.gz")}
    done = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name.split("-")[0] in complete}
    assert _temporaries(out) == []
    assert 2 <= len(complete) < N_EVENTS

    # without --resume (or --overwrite) the folder is refused; with it, only the missing events run
    refused = _cli("simulate", *SIM, "--out", out)
    assert refused.returncode == 1 and refused.stderr.startswith("error:") and "--resume" in refused.stderr
    r = _cli("simulate", *SIM, "--out", out, "--resume")
    assert r.returncode == 0, r.stderr
    assert f"events: {N_EVENTS - len(complete)} in" in r.stderr
    assert {name: (out / name).stat().st_mtime_ns for name in done} == done
    assert _files(out) == _files(reference)


def test_ctrl_c_stops_a_local_cluster_run(tmp_path):
    out = tmp_path / "events"
    run = subprocess.Popen([*DEEPRECO, "simulate", *SIM, "--out", str(out), "--workers", "2"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _events_written(out) >= 1, 120, "the first event")
        children = psutil.Process(run.pid).children(recursive=True)
        start = time.monotonic()
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=20)
        assert time.monotonic() - start < 10
        _, alive = psutil.wait_procs(children, timeout=5)
    finally:
        run.kill()
    assert run.returncode != 0 and alive == [] and _temporaries(out) == []
    assert "Traceback" not in err


def test_reconstruct_resume_writes_only_the_missing_submissions(reference, tmp_path):
    out = tmp_path / "tracks"
    r = _cli("reconstruct", reference, "-m", "truth", "--out", out, "-n", "4")
    assert r.returncode == 0, r.stderr
    first = _files(out)
    assert len(first) == 4
    missing = sorted(first)[1]
    (out / missing).unlink()
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r = _cli("reconstruct", reference, "-m", "truth", "--out", out, "-n", "4", "--resume")
    assert r.returncode == 0, r.stderr
    assert "wrote 1 submission(s)" in r.stdout
    assert _files(out) == first
    assert all(p.stat().st_mtime_ns == mtimes[p.name] for p in out.iterdir() if p.name != missing)


@pytest.mark.parametrize("command", ["simulate", "reconstruct", "evaluate"])
def test_bad_workers_or_scheduler_give_one_line_fast_and_write_nothing(command, reference, tmp_path):
    out = tmp_path / "out"
    base = {"simulate": ["simulate", *SIM, "--out", out],
            "reconstruct": ["reconstruct", reference, "-m", "truth", "--out", out],
            "evaluate": ["evaluate", reference, "-m", "truth"]}[command]
    r = _cli(*base, "--workers", "0")
    assert r.returncode == 2 and r.stderr.startswith("error: Invalid value for '--workers'")  # a usage error
    assert len(r.stderr.splitlines()) == 1
    start = time.monotonic()
    r = _cli(*base, "--scheduler", f"tcp://127.0.0.1:{_free_port()}")
    assert r.returncode == 1 and r.stderr.startswith("error: cannot reach the Dask scheduler"), r.stderr
    assert len(r.stderr.splitlines()) == 1 and time.monotonic() - start < 30
    if command == "simulate":
        r = _cli(*base, "--scheduler", "no-port-here")
        assert r.returncode == 1 and r.stderr.startswith("error: --scheduler no-port-here: not a scheduler address")
        assert len(r.stderr.splitlines()) == 1, r.stderr
    assert not out.exists()


def test_one_worker_runs_in_process_and_a_failure_is_counted(tmp_path):
    from deepreco.distributed import EventRunner, per_process
    from deepreco.errors import DeepRecoError

    with EventRunner(1) as runner:
        assert runner.client is None
        assert runner.run(abs, [-2, 3, -4]) == [2, 3, 4]
        with pytest.raises(DeepRecoError, match="^1 of 3 events failed:\n  'x': TypeError: bad operand"):
            runner.run(abs, [1, "x", 2])
        with pytest.raises(DeepRecoError, match="^bad input$"):  # the same bad input for all: its one line
            runner.run(_refuse, [1, 2])
        with pytest.raises(DeepRecoError, match="^1 of 2 events failed:\n  -1: bad input$"):
            runner.run(_refuse_negative, [-1, 2])  # some failed: each on its line
    built = []
    for _ in range(3):
        per_process("test-object", lambda: built.append(1) or object())
    assert built == [1]


def _refuse_negative(item):
    if item < 0:
        _refuse(item)
    return item


def _refuse(item):
    from deepreco.errors import DeepRecoError

    raise DeepRecoError("bad input")


def _heap_faults(_item) -> int:
    """This thread's new pages (minor faults) over 50 arrays of 4 MiB (1,024 pages each) made and dropped."""
    import resource

    import numpy as np

    np.ones(1 << 19)
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(50):
        np.ones(1 << 19)
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap and per-thread page faults: Linux")
def test_workers_reuse_the_heap_as_a_plain_process_does():
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_ set, so every array above 128 KiB was mapped and its
    pages faulted anew (gnn 1.7 times slower on a worker); deepreco's task wrapper gives the heap back its plain
    thresholds: the arrays reuse the pages of the ones before (0 new pages here; 25,700 without it)."""
    import cloudpickle

    from deepreco.distributed import EventRunner

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    try:
        with EventRunner(2) as runner:
            faults = runner.run(_heap_faults, [0, 1])
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert max(faults) < 5_000, faults


def test_a_local_cluster_leaves_the_environment_of_its_process_as_it_was():
    """The nanny writes its workers' variables (MALLOC_TRIM_THRESHOLD_, OMP_NUM_THREADS=1) into the environment of
    the process that starts the cluster, where every later subprocess would inherit them: put back, while the
    cluster runs and after."""
    from deepreco.distributed import EventRunner

    before = dict(os.environ)
    with EventRunner(2) as runner:
        on_workers = runner.client.run(os.getenv, "MALLOC_TRIM_THRESHOLD_")
        during = dict(os.environ)
    assert set(on_workers.values()) == {"65536"}, on_workers  # what the nanny gives them
    assert during == before and dict(os.environ) == before


def test_a_file_has_no_name_until_it_is_complete(tmp_path, monkeypatch):
    import pandas as pd

    from deepreco.io import _Staged, write_submission

    file = _Staged(tmp_path / "x.csv")
    file.handle.write(b"hit_id,track_id\n")
    assert list(tmp_path.iterdir()) == []  # a writer killed now leaves nothing (Linux: O_TMPFILE)
    file.publish()
    file.discard()
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]
    tracks = pd.DataFrame({"hit_id": [1, 2, 3], "track_id": [0, 0, 1]})
    write_submission(tracks, tmp_path / "a.csv.gz")

    def no_proc(*args, **kwargs):
        raise OSError("no /proc")

    monkeypatch.setattr(os, "link", no_proc)  # without /proc the file is copied to its temporary name
    write_submission(tracks, tmp_path / "b.csv.gz")
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv.gz", "b.csv.gz", "x.csv"]

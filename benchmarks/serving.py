"""onnxruntime against torch for every exported network, on one thread and on two, the same inputs; the served
methods end to end against in-process; a server under sustained load.

    python benchmarks/serving.py --part networks [--threads 1 2] [--repeat 3] [--big-calo 100000]
    python benchmarks/serving.py --part methods [--threads 1 2] [--clients 8] [--seconds 60]
    python benchmarks/serving.py --part trackml [--threads 1 2] [--lists 1001 1003]
    python benchmarks/serving.py --part calo [--threads 1 2] [--calo-pileup 20] [--knn graph|tree]

``--part networks`` (the default runs both parts):

Exports every network (`deepreco.export.export_networks`, the shipped models) to a temporary folder, then,
for each thread count in its own process (torch, onnxruntime and numba all set to that many threads), runs
each network on one input of the size given below, once to warm up and ``--repeat`` times timed; the best and
the median are kept. torch is the in-process network (for the calorimeter: numba's tree kNN), onnxruntime the
export (for the calorimeter: the exact chunked kNN inside the graph). Then, alone in a process on two
threads, the exported GravNet on an event of ``--big-calo`` random hits: seconds and peak memory (the
resident set of that process, model and inputs included). Results: ``benchmarks/results/serving.txt``.

``--part methods``: a repository of the gnn filter and interaction network, GravNet and the LSTM is served by
``deepreco serve --threads T`` in a subprocess, for T = 1 and 2. In a client process of T torch threads, the
gnn method on one simulated ttbar + mu = 200 event and the gravnet method on one calorimeter event of taus +
``--calo-pileup`` pile-up (20: the exact neighbour search of the served GravNet is n^2 work, 156 s at 100,000
hits on these CPUs, and taus + mu = 200 are 253,582 hits) run in-process and with ``server=`` (each after a
warm-up on a small event), timed end to end, and their results compared (tracks: hits in another track and
TrackML score; clusters: hits in another cluster). The machine has 2 cores for client and server together (a
server on its own machine would not compete with the client for them). Then sustained load: ``--clients``
client processes call the served LSTM (100 seeds a request) as fast as they can for ``--seconds``: requests/s,
p50 / p99 latency, errors. Results: ``benchmarks/results/serving_methods.txt``.

``--part trackml``: the gnn method served against in-process on events simulated from the real TrackML
particle lists ``--lists`` (development lists 1000-1009 of /work/shared/data/trackml, no pile-up added: the
lists hold ttbar + about 200 collisions; ``deepreco simulate -g trackml --particles FILE``, seed 0), a server
of the gnn filter and interaction network on T onnxruntime threads, the client on T torch threads: tracks,
hits in another track, TrackML score, seconds. Results: ``benchmarks/results/serving_trackml.txt``.

``--part calo``: the gravnet comparison of ``--part methods`` alone, its server serving GravNet alone, the
in-process and the served method each in its own client process: seconds, peak resident memory of the client
and of the server, hits in another cluster or class. ``--knn``: how the repository serves GravNet, ``graph``
(ONNX with the exact n^2 search inside the graph) or ``tree`` (a Python-backend model: the in-process network
and its tree search; the one that runs taus + mu = 200, 253,582 hits, in seconds on a CPU). Results:
``benchmarks/results/serving_calo.txt`` (graph), ``serving_calo_tree_muPILEUP.txt`` (tree).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

from real_lists import real_list_event

RESULTS = Path(__file__).resolve().parent / "results"

# (network, size given to its example inputs, what that size means)
SIZES = [
    ("lstm", 5000, "5,000 seeds"),
    ("deepcore", 64, "64 windows"),
    ("gnn-filter", 100_000, "100,000 hits, 400,000 edges"),
    ("gnn-network", 100_000, "100,000 hits, 400,000 edges"),
    ("gnn-embedding", 100_000, "100,000 hits"),
    ("calo-gravnet", 20_000, "20,000 hits"),
    ("calo-edgeconv", 20_000, "20,000 hits"),
    ("calo-drn", 4000, "about 200 clusters, 4,400 hits"),
    ("toy-lstm", 256, "256 events"),
    ("toy-bilstm", 256, "256 events"),
    ("toy-convnn", 256, "256 events"),
    ("toy-conv_autoencoder", 256, "256 events"),
]


def _threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(threads)


def _time(fn, repeat: int) -> tuple[float, float]:
    fn()  # warm-up: first-call allocations, numba's compiled kernels loaded
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def _run(threads: int, folder: str, repeat: int, queue, names=None) -> None:
    _threads(threads)
    import numpy as np
    import torch

    from deepreco.export import get_network
    from deepreco.export.onnx import session

    torch.set_num_threads(threads)
    rows = []
    for name, size, what in SIZES:
        if names and name not in names:
            continue
        net = get_network(name)
        _, reference = net.load(None)
        inputs = net.example(size, np.random.default_rng(0))
        sess = session(Path(folder) / f"{name}.onnx", threads=threads)
        feed = {t.name: v.numpy() for t, v in zip(net.inputs, inputs, strict=True)}
        n = repeat if not name.startswith("calo-") else 1
        with torch.no_grad():
            t_torch = _time(lambda r=reference, i=inputs: r(*i), n)
        t_ort = _time(lambda s=sess, f=feed: s.run(None, f), n)
        rows.append((threads, name, what, *t_torch, *t_ort))
        print(rows[-1], flush=True)
    queue.put(rows)


def _big_calo(hits: int, queue) -> None:
    _threads(2)
    import numpy as np

    from deepreco.export import get_network
    from deepreco.export.onnx import session

    folder = os.environ["DEEPRECO_BENCH_ONNX"]
    net = get_network("calo-gravnet")
    x = net.example(hits, np.random.default_rng(0))[0].numpy()
    sess = session(Path(folder) / "calo-gravnet.onnx", threads=2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    sess.run(None, {"x": x})
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((hits, seconds, before / 1024, peak / 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["networks", "methods", "trackml", "calo", "all"], default="all")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-calo", type=int, default=100_000, help="hits of the GravNet run (0: none)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the load test")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load test")
    parser.add_argument("--calo-pileup", type=float, default=20.0, help="pile-up of the calorimeter event")
    parser.add_argument("--knn", choices=["graph", "tree"], default="graph", help="--part calo: the served "
                        "GravNet's neighbour search (deepreco export --knn)")
    parser.add_argument("--names", nargs="+", help="--part networks: only these networks (results in "
                        "serving_NAME[_NAME].txt)")
    parser.add_argument("--lists", type=int, nargs="+", default=[1001, 1003], help="TrackML particle lists")
    args = parser.parse_args()
    if args.part in ("networks", "all"):
        networks(args)
    if args.part in ("methods", "all"):
        methods(args)
    if args.part in ("trackml", "all"):
        trackml(args)
    if args.part in ("calo", "all"):
        calo(args)


def networks(args) -> None:
    from deepreco.export import export_networks

    ctx = mp.get_context("spawn")
    lines = [f"machine: {platform.platform()}, {os.cpu_count()} CPUs; load average at start "
             f"{os.getloadavg()[0]:.2f}", "",
             "seconds a call, best / median of the timed calls (calorimeter: one timed call);",
             "torch: the in-process network; onnxruntime: the export (calorimeter: kNN inside the graph)", "",
             f"{'threads':>7s} {'network':20s} {'input':30s} {'torch best':>10s} {'median':>8s} "
             f"{'ort best':>9s} {'median':>8s} {'torch/ort':>9s}"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "onnx"
        t = time.perf_counter()
        if args.names:
            folder.mkdir()
            for name in args.names:
                export_networks(name, Path(tmp) / name)
                (Path(tmp) / name / f"{name}.onnx").rename(folder / f"{name}.onnx")
        else:
            export_networks("all", folder)
        lines.insert(1, f"export of every network with its checks: {time.perf_counter() - t:.0f} s")
        for threads in args.threads:
            queue = ctx.Queue()
            proc = ctx.Process(target=_run, args=(threads, str(folder), args.repeat, queue, args.names))
            proc.start()
            for r in queue.get():
                lines.append(f"{r[0]:7d} {r[1]:20s} {r[2]:30s} {r[3]:10.4f} {r[4]:8.4f} {r[5]:9.4f} {r[6]:8.4f} "
                             f"{r[3] / r[5]:8.2f}x")
                print(lines[-1], flush=True)
            proc.join()
        if args.big_calo and (not args.names or "calo-gravnet" in args.names):
            os.environ["DEEPRECO_BENCH_ONNX"] = str(folder)
            queue = ctx.Queue()
            proc = ctx.Process(target=_big_calo, args=(args.big_calo, queue))
            proc.start()
            hits, seconds, before, peak = queue.get()
            proc.join()
            lines += ["", f"exported GravNet (onnxruntime, 2 threads) on {hits:,} random hits: {seconds:.1f} s, "
                      f"peak resident memory {peak:.0f} MB ({before:.0f} MB before the call)"]
    RESULTS.mkdir(exist_ok=True)
    name = "serving.txt" if not args.names else f"serving_{'_'.join(args.names)}.txt"
    (RESULTS / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


# ---- served methods and sustained load ---------------------------------------------------------------------------
SERVED = ("gnn-filter", "gnn-network", "calo-gravnet", "lstm")
DATA = Path("/tmp/deepreco-bench")


@contextlib.contextmanager
def _server(repo: Path, threads: int):
    """``deepreco serve repo --threads threads`` in a subprocess; yields its gRPC address and process id; killed at
    the end."""
    import signal
    import subprocess
    import sys
    import urllib.request

    from deepreco.export.serve import free_port_pair

    port = free_port_pair()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "deepreco", "serve", str(repo), "--port", str(port),
                             "--threads", str(threads)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server did not start: {log.read()[-2000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port + 1}", proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # a benchmark's server: no request of ours is left to finish
        proc.wait()
        log.close()


def _events() -> tuple[Path, Path]:
    """The tracking event (ttbar + mu = 200) and a small one for the warm-up, simulated once."""
    from deepreco.simulate.dataset import simulate_dataset

    big, small = DATA / "serving-ttbar-mu200-seed3", DATA / "serving-ttbar-mu0-seed3"
    if not big.is_dir() or not any(big.iterdir()):
        simulate_dataset("ttbar", 1, big, seed=3, format="parquet", workers=1, pileup=200)
    if not small.is_dir() or not any(small.iterdir()):
        simulate_dataset("ttbar", 1, small, seed=3, format="parquet", workers=1, pileup=0)
    return big, small


def _moved_hits(a, b) -> int:
    """Hits whose track (its set of hits) differs between two submissions, or that one of them leaves out."""
    import pandas as pd

    def tracks(df):
        members = df.groupby("track_id")["hit_id"].apply(lambda s: tuple(sorted(s)))
        return pd.Series(df["track_id"].map(members).to_numpy(), index=df["hit_id"])

    both = pd.concat([tracks(a).rename("a"), tracks(b).rename("b")], axis=1)
    return int((both["a"] != both["b"]).sum())


def _methods_run(threads: int, address: str, big: str, small: str, calo_pileup: float, queue) -> None:
    _threads(threads)
    import torch

    from deepreco.io import open_path
    from deepreco.metrics.score import score_event
    from deepreco.reconstruct import get_method

    torch.set_num_threads(threads)
    rows = []
    event, warm = open_path(big), open_path(small)
    subs, times = {}, {}
    for where, method in (("in-process", get_method("gnn")), ("served", get_method("gnn", server=address))):
        method.reconstruct(warm)
        t = time.perf_counter()
        subs[where] = method.reconstruct(event)
        times[where] = time.perf_counter() - t
    scores = {k: score_event(event.truth, v) for k, v in subs.items()}
    rows.append(f"{threads:7d} gnn       ttbar + mu = 200, {event.n_hits:,} hits{'':8s} {times['in-process']:8.1f} "
                f"{times['served']:8.1f}   hits in another track: {_moved_hits(subs['in-process'], subs['served'])} "
                f"of {len(subs['in-process']):,}; TrackML score {scores['in-process']:.5f} in-process, "
                f"{scores['served']:.5f} served")
    print(rows[-1], flush=True)
    rows.append(_calo_row(threads, address, calo_pileup))
    queue.put(rows)


def _calo_row(threads: int, address: str, calo_pileup: float) -> str:
    """The gravnet method in-process and served on one taus + pile-up event: seconds, hits in another cluster."""
    import numpy as np

    from deepreco.calo.methods import get_method as calo_method
    from deepreco.calo.simulate import gun_event

    calo_event = gun_event(0, seed=0, source="tau", pileup=calo_pileup)
    labels, times = {}, {}
    served = calo_method("gravnet", server=address)
    served.model.timeout = 900.0  # seconds a request may take: the served search is n^2 work on a loaded CPU
    for where, method in (("in-process", calo_method("gravnet")), ("served", served)):
        method.reconstruct(gun_event(1, seed=0))
        t = time.perf_counter()
        labels[where] = method.reconstruct(calo_event)[0][["cluster_id", "hit_class"]].to_numpy()
        times[where] = time.perf_counter() - t
    moved = int(np.sum(labels["in-process"][:, 0] != labels["served"][:, 0]))
    classes = int(np.sum(labels["in-process"][:, 1] != labels["served"][:, 1]))
    what = f"taus + mu = {calo_pileup:g}, {len(calo_event.hits):,} hits"
    row = (f"{threads:7d} gravnet   {what:40s} {times['in-process']:8.1f} {times['served']:8.1f}   hits in another "
           f"cluster: {moved} of {len(calo_event.hits):,}; another class: {classes}")
    print(row, flush=True)
    return row


def _calo_event(pileup: float):
    """The taus + ``pileup`` calorimeter event (seed 0), simulated once and kept (pickled) for the next runs."""
    import pickle

    from deepreco.calo.simulate import gun_event

    path = DATA / f"calo-tau-mu{pileup:g}-seed0.pkl"
    if not path.is_file():
        DATA.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(gun_event(0, seed=0, source="tau", pileup=pileup)))
        os.replace(tmp, path)
    return pickle.loads(path.read_bytes())


def _calo_run(threads: int, address: str | None, calo_pileup: float, queue) -> None:
    """The gravnet method on the event, in-process (``address`` None) or served, in this process alone: seconds
    after a warm-up on a small event, the hits' clusters and classes, this process's peak resident memory."""
    _threads(threads)
    import torch

    from deepreco.calo.methods import get_method as calo_method
    from deepreco.calo.simulate import gun_event

    torch.set_num_threads(threads)
    event = _calo_event(calo_pileup)
    method = calo_method("gravnet", server=address)
    if address is not None:
        method.model.timeout = 3600.0  # seconds a request may take: the in-graph search is n^2 work on a CPU
    method.reconstruct(gun_event(1, seed=0))
    t = time.perf_counter()
    labels = method.reconstruct(event)[0][["cluster_id", "hit_class"]].to_numpy()
    seconds = time.perf_counter() - t
    queue.put((seconds, labels, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def _peak_mb(pid: int) -> float:
    """The peak resident memory of a running process (Linux's VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def calo(args) -> None:
    """The served gravnet method against in-process, alone (``--part calo``), each in its own client process."""
    import numpy as np

    from deepreco.export import write_repository

    ctx = mp.get_context("spawn")
    n_hits = len(_calo_event(args.calo_pileup).hits)  # simulated here once, before any timing
    search = {"tree": "the in-process network and its tree search on the server, --knn tree",
              "graph": "ONNX, the exact search inside the graph, --knn graph"}[args.knn]
    lines = [f"machine: {platform.platform()}, {os.cpu_count()} CPUs (client and server share them, and other "
             f"helpers' jobs ran beside them: the other core was busy); load average at start "
             f"{os.getloadavg()[0]:.2f}", "",
             f"gravnet method in-process against served (calo-gravnet on a deepreco serve: {search}), seconds for "
             "one event after a warm-up on a small one, each in its own client process; threads: the client's "
             "torch and numba threads and the server's; peak resident memory (MB) of the client process and of "
             "the server process", "",
             f"{'threads':>7s} {'event':34s} {'in-proc':>8s} {'served':>8s} {'client MB':>15s} {'server MB':>9s}"
             "   results compared",
             f"{'':7s} {'':34s} {'s':>8s} {'s':>8s} {'in-proc/served':>15s}"]
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        write_repository("calo-gravnet", repo, knn=args.knn)
        for threads in args.threads:
            with _server(repo, threads) as (address, pid):
                runs = {}
                for where, at in (("in-process", None), ("served", address)):
                    queue = ctx.Queue()
                    proc = ctx.Process(target=_calo_run, args=(threads, at, args.calo_pileup, queue))
                    proc.start()
                    runs[where] = queue.get()
                    proc.join()
                server_mb = _peak_mb(pid)
            (t_a, la, mb_a), (t_b, lb, mb_b) = runs["in-process"], runs["served"]
            moved, classes = int(np.sum(la[:, 0] != lb[:, 0])), int(np.sum(la[:, 1] != lb[:, 1]))
            what = f"taus + mu = {args.calo_pileup:g}, {n_hits:,} hits"
            lines.append(f"{threads:7d} {what:34s} {t_a:8.1f} {t_b:8.1f} {mb_a:7.0f}/{mb_b:<7.0f} {server_mb:9.0f}   "
                         f"hits in another cluster: {moved} of {n_hits:,}; another class: {classes}")
            print(lines[-1], flush=True)
    lines.append(f"load average at the end {os.getloadavg()[0]:.2f}")
    RESULTS.mkdir(exist_ok=True)
    name = "serving_calo.txt" if args.knn == "graph" else f"serving_calo_tree_mu{args.calo_pileup:g}.txt"
    (RESULTS / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _client(address: str, seconds: float, queue) -> None:
    """Call the served LSTM as fast as it answers for ``seconds``: latencies of the answers, errors."""
    _threads(1)
    import numpy as np

    from deepreco.errors import DeepRecoError
    from deepreco.export.client import RemoteNetwork

    net = RemoteNetwork(address, "lstm", timeout=10.0)
    seeds = np.random.default_rng(os.getpid()).normal(size=(100, 10, 8)).astype(np.float32)
    latencies, errors = [], 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        try:
            net.run(seeds)
            latencies.append(time.perf_counter() - t)
        except DeepRecoError:
            errors += 1
    queue.put((latencies, errors))


def methods(args) -> None:
    import numpy as np

    from deepreco.export import write_repository

    ctx = mp.get_context("spawn")
    big, small = _events()
    lines = [f"machine: {platform.platform()}, {os.cpu_count()} CPUs (client and server share them); load "
             f"average at start {os.getloadavg()[0]:.2f}", "",
             "served methods end to end, seconds for one event (after a warm-up on a small event); threads: the "
             "client's torch threads and the server's onnxruntime threads", "",
             f"{'threads':>7s} {'method':9s} {'event':40s} {'in-proc':>8s} {'served':>8s}   results compared"]
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        for name in SERVED:
            write_repository(name, Path(tmp) / name)
            (Path(tmp) / name / name).rename(repo / name)
        for threads in args.threads:
            with _server(repo, threads) as (address, _):
                queue = ctx.Queue()
                proc = ctx.Process(target=_methods_run, args=(threads, address, str(big), str(small),
                                                                  args.calo_pileup, queue))
                proc.start()
                lines += queue.get()
                proc.join()
        with _server(repo, 1) as (address, _):
            queue = ctx.Queue()
            procs = [ctx.Process(target=_client, args=(address, args.seconds, queue)) for _ in range(args.clients)]
            for p in procs:
                p.start()
            results = [queue.get() for _ in procs]
            for p in procs:
                p.join()
    latencies = np.array([x for r in results for x in r[0]])
    errors = sum(r[1] for r in results)
    lines += ["", f"sustained load: {args.clients} client processes, {args.seconds:.0f} s, the served LSTM (100 seeds "
              f"a request, gRPC), server on 1 onnxruntime thread:",
              f"  {len(latencies):,} requests answered, {len(latencies) / args.seconds:.1f} requests/s, latency p50 "
              f"{1000 * np.percentile(latencies, 50):.1f} ms, p99 {1000 * np.percentile(latencies, 99):.1f} ms, "
              f"errors {errors}"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serving_methods.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


# ---- the gnn served on events of real TrackML particle lists -------------------------------------------------------
def _trackml_events(lists) -> list[Path]:
    """The folders of the lists simulated with seed 0 as event 0 (benchmarks/gnn_speed.py reads the same)."""
    return [real_list_event(number, DATA / f"serving-trackml-{number}", seed=0, event_id=0).parent
            for number in lists]


def _trackml_run(threads: int, address: str, folders: list[str], lists: list[int], queue) -> None:
    _threads(threads)
    import torch

    from deepreco.io import open_path
    from deepreco.metrics.score import score_event
    from deepreco.reconstruct import get_method

    torch.set_num_threads(threads)
    rows = []
    methods = {"in-process": get_method("gnn"), "served": get_method("gnn", server=address)}
    for number, folder in zip(lists, folders, strict=True):
        event = open_path(folder)
        subs, times = {}, {}
        for where, method in methods.items():
            t = time.perf_counter()
            subs[where] = method.reconstruct(event)
            times[where] = time.perf_counter() - t
        scores = {k: score_event(event.truth, v) for k, v in subs.items()}
        tracks = {k: v["track_id"].nunique() for k, v in subs.items()}
        rows.append(f"{threads:7d} {number:5d} {event.n_hits:8,d} {times['in-process']:8.1f} {times['served']:8.1f}   "
                    f"tracks {tracks['in-process']:,} / {tracks['served']:,}; hits in another track "
                    f"{_moved_hits(subs['in-process'], subs['served'])} of {len(subs['in-process']):,} assigned; "
                    f"TrackML score {scores['in-process']:.5f} / {scores['served']:.5f}")
        print(rows[-1], flush=True)
    queue.put(rows)


def trackml(args) -> None:
    from deepreco.export import write_repository

    ctx = mp.get_context("spawn")
    folders = _trackml_events(args.lists)
    lines = [f"machine: {platform.platform()}, {os.cpu_count()} CPUs (client and server share them, and other "
             f"jobs ran beside them); load average at start {os.getloadavg()[0]:.2f}", "",
             "gnn on events simulated from real TrackML particle lists (no pile-up added), in-process against "
             "served (gnn-filter and gnn-network on a deepreco serve); seconds for one event end to end, first "
             "call included; threads: the client's torch threads and the server's onnxruntime threads",
             "in-process / served:", "",
             f"{'threads':>7s} {'list':>5s} {'hits':>8s} {'in-proc':>8s} {'served':>8s}   results compared"]
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        write_repository("gnn", repo)  # the networks; deepreco serve serves the ONNX models of it
        for threads in args.threads:
            with _server(repo, threads) as (address, _):
                queue = ctx.Queue()
                proc = ctx.Process(target=_trackml_run, args=(threads, address, [str(f) for f in folders],
                                                              list(args.lists), queue))
                proc.start()
                lines += queue.get()
                proc.join()
    lines.append(f"load average at the end {os.getloadavg()[0]:.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serving_trackml.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

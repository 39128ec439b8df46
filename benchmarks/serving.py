"""onnxruntime against torch for every exported network, on one thread and on two, the same inputs.

    python benchmarks/serving.py [--threads 1 2] [--repeat 3] [--big-calo 100000]

Exports every network (`deepreco.export.export_networks`, the shipped models) to a temporary folder, then,
for each thread count in its own process (torch, onnxruntime and numba all set to that many threads), runs
each network on one input of the size given below, once to warm up and ``--repeat`` times timed; the best and
the median are kept. torch is the in-process network (for the calorimeter: numba's tree kNN), onnxruntime the
export (for the calorimeter: the exact chunked kNN inside the graph). Then, alone in a process on two
threads, the exported GravNet on an event of ``--big-calo`` random hits: seconds and peak memory (the
resident set of that process, model and inputs included). Results: ``benchmarks/results/serving.txt``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

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


def _run(threads: int, folder: str, repeat: int, queue) -> None:
    _threads(threads)
    import numpy as np
    import torch

    from deepreco.export import get_network
    from deepreco.export.onnx import session

    torch.set_num_threads(threads)
    rows = []
    for name, size, what in SIZES:
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
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-calo", type=int, default=100_000, help="hits of the GravNet run (0: none)")
    args = parser.parse_args()
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
        export_networks("all", folder)
        lines.insert(1, f"export of every network with its checks: {time.perf_counter() - t:.0f} s")
        for threads in args.threads:
            queue = ctx.Queue()
            proc = ctx.Process(target=_run, args=(threads, str(folder), args.repeat, queue))
            proc.start()
            for r in queue.get():
                lines.append(f"{r[0]:7d} {r[1]:20s} {r[2]:30s} {r[3]:10.4f} {r[4]:8.4f} {r[5]:9.4f} {r[6]:8.4f} "
                             f"{r[3] / r[5]:8.2f}x")
                print(lines[-1], flush=True)
            proc.join()
        if args.big_calo:
            os.environ["DEEPRECO_BENCH_ONNX"] = str(folder)
            queue = ctx.Queue()
            proc = ctx.Process(target=_big_calo, args=(args.big_calo, queue))
            proc.start()
            hits, seconds, before, peak = queue.get()
            proc.join()
            lines += ["", f"exported GravNet (onnxruntime, 2 threads) on {hits:,} random hits: {seconds:.1f} s, "
                      f"peak resident memory {peak:.0f} MB ({before:.0f} MB before the call)"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serving.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

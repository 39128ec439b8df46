"""The in-graph exact kNN search (`deepreco.export.knn.graph_knn`) in onnxruntime, this version against an earlier
one of the repository, on one thread and on two: seconds a search, and the neighbours checked against the
in-process tree.

    python benchmarks/knn_graph.py [--hits 20000] [--dim 4] [--k 16] [--threads 1 2] [--before 10aa2b1]

Each version's search alone (GravNet's: k = 16 in 4 dimensions) is exported to ONNX by the project's exporter,
then run in onnxruntime on ``--hits`` random float32 points (seed 0), once to warm up and ``--repeat`` times
timed (best kept), each thread count in its own process. ``--before``: the git revision whose
``src/deepreco/export/knn.py`` is the earlier version (10aa2b1: the exact float64 search, 64 queries a step, as
merged before the float32 screening). Results: ``benchmarks/results/knn_graph.txt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _module(source: Path | None):
    if source is None:
        from deepreco.export import knn

        return knn
    spec = importlib.util.spec_from_file_location("knn_before", source)
    module = importlib.util.module_from_spec(spec)
    sys.modules["knn_before"] = module  # the exporter looks the search's functions up by module name
    spec.loader.exec_module(module)
    return module


def _export(source: str | None, dim: int, k: int, path: str) -> None:
    import torch

    from deepreco.export import get_network
    from deepreco.export.networks import Tensor
    from deepreco.export.onnx import export_onnx

    knn = _module(Path(source) if source else None)

    class Search(torch.nn.Module):
        def forward(self, x):
            return knn.graph_knn(x, k)

    net = dataclasses.replace(get_network("calo-gravnet"), inputs=(Tensor("x", "float32", ("hits", dim)),),
                              outputs=(Tensor("idx", "int64", ("hits", k)),))
    export_onnx(net, Search(), (torch.randn(300, dim),), Path(path))


def _run(path: str, threads: int, hits: int, dim: int, k: int, repeat: int, queue) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(threads)
    import numpy as np
    import torch

    from deepreco.calo.models.knn import knn
    from deepreco.export.onnx import session

    torch.set_num_threads(threads)
    x = np.random.default_rng(0).normal(size=(hits, dim)).astype(np.float32)
    sess = session(Path(path), threads=threads)
    (got,) = sess.run(None, {"x": x})  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        sess.run(None, {"x": x})
        times.append(time.perf_counter() - t)
    same = bool(np.array_equal(got, knn(torch.from_numpy(x), k).numpy()))
    queue.put((min(times), same))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=4)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--before", default="10aa2b1", help="git revision of the earlier knn.py")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    lines = [f"machine: {platform.platform()}, {os.cpu_count()} CPUs, shared with other helpers' jobs (the other "
             f"core busy); load average at start {os.getloadavg()[0]:.2f}", "",
             f"graph_knn exported to ONNX, in onnxruntime: {args.hits:,} random float32 points in {args.dim} "
             f"dimensions, k = {args.k}; seconds a search (best of {args.repeat} after a warm-up); same: the "
             "neighbours equal the in-process tree's, in order", "",
             f"{'version':28s} {'threads':>7s} {'seconds':>8s}  same"]
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "knn_before.py"
        before.write_text(subprocess.run(["git", "show", f"{args.before}:src/deepreco/export/knn.py"], cwd=ROOT,
                                         check=True, capture_output=True, text=True).stdout)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
        for label, source in ((f"before ({args.before})", str(before)), (f"this tree (HEAD {head})", None)):
            path = str(Path(tmp) / f"{'before' if source else 'now'}.onnx")
            proc = ctx.Process(target=_export, args=(source, args.dim, args.k, path))
            proc.start()
            proc.join()
            for threads in args.threads:
                queue = ctx.Queue()
                proc = ctx.Process(target=_run, args=(path, threads, args.hits, args.dim, args.k, args.repeat,
                                                      queue))
                proc.start()
                seconds, same = queue.get()
                proc.join()
                lines.append(f"{label:28s} {threads:7d} {seconds:8.2f}  {same}")
                print(lines[-1], flush=True)
    lines.append(f"load average at the end {os.getloadavg()[0]:.2f}")
    RESULTS.mkdir(exist_ok=True)
    name = "knn_graph.txt" if (args.hits, args.dim, args.k) == (20_000, 4, 16) else \
        f"knn_graph_{args.hits}_{args.dim}d_k{args.k}.txt"
    (RESULTS / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

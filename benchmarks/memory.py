"""Peak memory of each track finder against the number of hits: one fresh process per method and event.

    python benchmarks/memory.py [--pileup 50 100 200 300 450] [--methods ckf gnn lstm dbscan] [--real 1001]
                                [--threads 1] [--max-gb 6] [--data DIR] [--src DIR --label before]

The events are Pythia 8 ttbar with Poisson(``--pileup``) pile-up collisions (seed 7; about 53,000 hits at
mu = 50 and 300,000 at mu = 450) and the real TrackML particle list of event ``--real`` (a development list,
1000-1009; about 100,000 hits), simulated on the TrackML detector once into ``--data`` and reused. Each method
runs on each event in a new Python process (``--threads`` torch and BLAS threads) that reads the event, then
reconstructs it; its peak resident memory (ru_maxrss of that process) is the figure, with the resident memory
after reading the event (imports, the event, the model) beside it. The submission is scored in this process.
Sizes go in ascending order, and a method is not run on an event where its peak at the size before, grown
with the square of the hits, passes ``--max-gb`` (the machine is shared: such a run is listed as skipped).
``--src DIR`` measures another source tree (e.g. an older commit's ``src``, unpacked with ``git archive``)
under ``--label``. Results go to ``benchmarks/results/memory.txt`` / ``.json`` (a run replaces the rows of its
label, methods and events and keeps the others) and ``memory.png``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from real_lists import real_list_event

RESULTS = Path(__file__).resolve().parent / "results"


def _child(event: str, method: str, out: str) -> None:
    """In the measured process: read, reconstruct, write the submission; print the figures as JSON."""
    import resource

    from deepreco.io import read_event
    from deepreco.reconstruct import get_method

    ev = read_event(event)
    algo = get_method(method)  # a model is loaded here: its memory counts as the method's
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    tracks = algo.reconstruct(ev)
    seconds = time.perf_counter() - start
    tracks.to_csv(out, index=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"hits": ev.n_hits, "seconds": seconds, "ready_mb": base / 1024, "peak_mb": peak / 1024}))


def _measure(event: Path, method: str, threads: int, src: str | None) -> dict:
    from deepreco.io import read_event, read_submission
    from deepreco.metrics import evaluate

    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "submission.csv"
        proc = subprocess.run([sys.executable, __file__, "--child", str(event), method, str(out)], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        ev = read_event(event)
        row["score"] = float(evaluate(ev.truth, ev.particles, read_submission(out))["score"])
    return row


def _events(args) -> list[tuple[str, Path]]:
    from deepreco.simulate.dataset import simulate_dataset

    data = Path(args.data)
    events = []
    for mu in args.pileup:
        folder = data / f"ttbar-mu{mu:g}-seed7"
        if not folder.is_dir() or not any(folder.iterdir()):
            print(f"simulating ttbar + mu = {mu:g} into {folder} ...", flush=True)
            simulate_dataset("ttbar", 1, folder, seed=7, format="parquet", pileup=float(mu))
        events.append((f"ttbar mu={mu:g}", folder / "event000000000"))
    if args.real is not None:
        hits = real_list_event(args.real, data / f"trackml-{args.real}-seed1", seed=1, event_id=0)
        events.append((f"real list {args.real}", hits.parent / hits.name.removesuffix("-hits.parquet")))
    return events


def _update(rows: list[dict]) -> None:
    """Merge ``rows`` into memory.json and write the report, under a lock (several runs may go at once)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "memory.json"
    with open(Path(tempfile.gettempdir()) / "deepreco-memory-benchmark.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = json.loads(path.read_text())["rows"] if path.exists() else []
        done = {(r["label"], r["method"], r["event"]) for r in rows}
        merged = [r for r in old if (r["label"], r["method"], r["event"]) not in done] + rows
        tmp = path.with_suffix(".json.part")
        tmp.write_text(json.dumps({"machine": f"{platform.machine()} {platform.python_version()}", "rows": merged},
                                  indent=1))
        tmp.replace(path)
        _report(merged)


def _report(rows: list[dict]) -> None:
    lines = [f"# peak resident memory of one reconstruction in a fresh process (ru_maxrss); "
             f"{platform.machine()} {platform.python_version()}; machine shared with other jobs (times are "
             "pessimistic, memory is not affected)",
             "# ready: after reading the event and loading the model; peak: after reconstructing it",
             f"{'label':8s} {'method':7s} {'event':18s} {'hits':>8s} {'threads':>7s} {'ready MiB':>9s} "
             f"{'peak MiB':>9s} {'seconds':>8s} {'score':>7s}"]
    for r in sorted(rows, key=lambda r: (r["label"] != "after", r["label"], r["method"], r.get("hits", 0))):
        if "peak_mb" in r:
            lines.append(f"{r['label']:8s} {r['method']:7s} {r['event']:18s} {r['hits']:8d} {r['threads']:7d} "
                         f"{r['ready_mb']:9.0f} {r['peak_mb']:9.0f} {r['seconds']:8.1f} {r['score']:7.4f}")
        else:
            lines.append(f"{r['label']:8s} {r['method']:7s} {r['event']:18s} {'':8s} {r['threads']:7d} "
                         f"{r.get('skipped', r.get('error', ''))}")
    tmp = RESULTS / "memory.txt.part"
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(RESULTS / "memory.txt")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for (label, method) in sorted({(r["label"], r["method"]) for r in rows if "peak_mb" in r}):
        pts = sorted((r["hits"], r["peak_mb"] / 1024) for r in rows
                     if r["label"] == label and r["method"] == method and "peak_mb" in r)
        ax.plot(*zip(*pts, strict=True), "o-" if label == "after" else "x--", label=f"{method} ({label})")
    ax.axhline(4, color="grey", lw=0.8)
    ax.set_xlabel("hits in the event")
    ax.set_ylabel("peak resident memory [GiB]")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "memory.png.part", dpi=110, format="png")
    plt.close(fig)
    (RESULTS / "memory.png.part").replace(RESULTS / "memory.png")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pileup", type=float, nargs="+", default=[50, 100, 200, 300, 450])
    parser.add_argument("--methods", nargs="+", default=["ckf", "gnn", "lstm", "dbscan"])
    parser.add_argument("--real", type=int, default=1001, help="real TrackML particle list (1000-1009); -1: none")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-gb", type=float, default=6.0)
    parser.add_argument("--data", default="/tmp/deepreco-bench/memory")
    parser.add_argument("--src", default=None, help="source tree to measure instead of the installed deepreco")
    parser.add_argument("--label", default="after")
    parser.add_argument("--report", action="store_true", help="only write the report of memory.json")
    args = parser.parse_args()
    if args.report:
        _update([])
        return
    args.real = None if args.real is not None and args.real < 0 else args.real
    events = _events(args)
    for method in args.methods:
        last = None  # (hits, peak MB) of the largest event done
        for name, path in sorted(events, key=lambda e: _hits(e[1])):
            row = {"label": args.label, "method": method, "event": name, "threads": args.threads}
            hits = _hits(path)
            if last and last[1] / 1024 * (hits / last[0]) ** 2 > args.max_gb:
                row["skipped"] = f"skipped: {last[1] / 1024 * (hits / last[0]) ** 2:.1f} GB expected"
            else:
                row.update(_measure(path, method, args.threads, args.src))
                if "peak_mb" in row:
                    last = (row["hits"], row["peak_mb"])
            print(json.dumps(row), flush=True)
            _update([row])


def _hits(event: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(f"{event}-hits.parquet").metadata.num_rows


if __name__ == "__main__":
    main()

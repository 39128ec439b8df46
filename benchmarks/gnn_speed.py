"""gnn's seconds per stage on events simulated from real TrackML particle lists, this tree against an earlier
commit, on 1 thread, on 2 threads, and on 2 threads with the other core kept busy.

    python benchmarks/gnn_speed.py [--lists 1001,1003] [--before 69b2e15] [--rounds 1]
        [--method gnn:kalman=false,later_passes=false] [--tag T]

``--method``: the method and its settings as `benchmarks/tracking.py` writes them (default: the graph pipeline,
what the results before session 18 measured; ``gnn`` for its defaults with the Kalman step and the later passes,
``ckf`` for the filter alone: its stage columns are then empty).

The events: the particles of development lists 1001 and 1003 simulated on the TrackML detector with seed 0 (the
events of ``benchmarks/serving.py``, made when missing). The earlier code is ``git archive BEFORE src``, run from
a temporary folder. Each run is a fresh Python process (``--threads N`` as the command line sets it,
`deepreco.threads.set_threads`) that reconstructs the event once unmeasured (numba's compiled code loaded,
caches filled, the onnxruntime session made) and then ``--rounds`` times measured, keeping the fastest: the
seconds of each stage the method reports (module-map graph, graph + filter, interaction network, track
building, and for gnn's defaults the Kalman step with the later passes), the wall-clock seconds of the whole
``reconstruct`` and the CPU seconds the process spent in it (all its threads).
"busy": a ``yes > /dev/null`` process keeps one more core busy. Earlier and this code run back to
back on each event and setting, so that both meet the same load; the load average before each run is shown:
the machine is shared with other jobs. The TrackML score of each submission, and how many hits the two
submissions put in different tracks, say whether the speed cost any of the result.
Results go to ``benchmarks/results/gnn_speed.txt`` and ``.json`` (``--tag T``: ``gnn_speed_T.txt``, ``.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hog import busy_core
from real_lists import real_list_event
from tracking import _spec

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/tmp/deepreco-bench")

CHILD = r"""
import json, sys, time
from deepreco.threads import set_threads
set_threads(int(sys.argv[2]))
import torch
from deepreco.io import open_path
from deepreco.metrics.score import score_event
from deepreco.reconstruct import get_method
event = open_path(sys.argv[1])
name, params = json.loads(sys.argv[5])
method = get_method(name, **params)
method.reconstruct(event)
best = None
for _ in range(int(sys.argv[4])):
    wall, cpu = time.perf_counter(), time.process_time()
    sub = method.reconstruct(event)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if best is None or wall < best["seconds_total"]:
        best = {**getattr(method, "last_run", {}), "seconds_total": wall, "cpu_seconds": cpu}
sub.to_parquet(sys.argv[3])
best.update(n_hits=event.n_hits, threads=torch.get_num_threads(), score=float(score_event(event.truth, sub)),
            tracks=int(sub["track_id"].nunique()))
print(json.dumps(best))
"""


def _event(number: int) -> Path:
    """The folder of list ``number`` simulated with seed 0 as event 0 (the events of benchmarks/serving.py)."""
    return real_list_event(number, DATA / f"serving-trackml-{number}", seed=0, event_id=0).parent


def _run(src: Path, event: Path, threads: int, out: Path, rounds: int, spec: tuple[str, dict]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    r = subprocess.run([sys.executable, "-c", CHILD, str(event), str(threads), str(out), str(rounds),
                        json.dumps(spec)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"the gnn run ({src}, {threads} threads) failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


STAGES = (("seconds_graph", 6), ("seconds_filter", 6), ("seconds_gnn", 7), ("seconds_build", 6),
          ("seconds_kalman", 6))


def _seconds(row: dict, key: str, width: int) -> str:
    return f"{row[key]:{width}.2f}" if key in row else f"{'-':>{width}s}"


def _moved_hits(a: Path, b: Path) -> int:
    """Hits that the two submissions put in different tracks (each track named by its smallest hit id)."""
    import pandas as pd

    def named(path):
        sub = pd.read_parquet(path)
        return sub.set_index("hit_id")["track_id"].map(sub.groupby("track_id")["hit_id"].min())

    x, y = named(a), named(b)
    both = x.index.union(y.index)
    return int((x.reindex(both).fillna(-1) != y.reindex(both).fillna(-1)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", default="1001,1003")
    parser.add_argument("--before", default="69b2e15", help="the earlier commit (default: before this work)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--tag", default="", help="results to gnn_speed_TAG.txt / .json")
    parser.add_argument("--method", default="gnn:kalman=false,later_passes=false",
                        help="NAME[:KEY=VALUE,...] as benchmarks/tracking.py takes it")
    args = parser.parse_args()
    spec = _spec(args.method)
    lists = [int(n) for n in args.lists.split(",")]
    events = {n: _event(n) for n in lists}
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True,
                           text=True, check=True).stdout.strip()
    rows = []
    lines = [f"# benchmarks/gnn_speed.py --lists {args.lists} --before {args.before} --rounds {args.rounds}"
             f" --method {args.method}{' --tag ' + args.tag if args.tag else ''}",
             f"# {platform.machine()}, {len(os.sched_getaffinity(0))} usable cores, Python "
             f"{platform.python_version()}; the machine is shared with other jobs (load average before each run)",
             f"# before: {args.before}; after: {head}{' + uncommitted changes' if dirty else ''}",
             "# seconds: graph = module map, filter = graph + filter, network = interaction network, build = track "
             "building, kalman = Kalman step and later passes; total = wall clock of reconstruct; cpu = CPU seconds of "
             "the process in it",
             "",
             f"{'list':>4s} {'hits':>7s} {'setting':12s} {'code':6s} {'graph':>6s} {'filter':>6s} {'network':>7s} "
             f"{'build':>6s} {'kalman':>6s} {'total':>6s} {'cpu':>6s} {'score':>7s} {'tracks':>6s}  load"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "src"], capture_output=True,
                                 check=True).stdout
        (tmp / "before").mkdir()
        subprocess.run(["tar", "-x", "-C", str(tmp / "before")], input=archive, check=True)
        codes = {"before": tmp / "before" / "src", "after": ROOT / "src"}
        for setting, threads, busy in (("1 thread", 1, False), ("2 threads", 2, False),
                                       ("2 + busy", 2, True)):
            hog = busy_core() if busy else None
            try:
                for number, event in events.items():
                    subs = {}
                    for code, src in codes.items():
                        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                        subs[code] = tmp / f"{code}-{number}-{threads}-{busy}.parquet"
                        r = _run(src, event, threads, subs[code], args.rounds, spec)
                        r.update(list=number, setting=setting, code=code, load=load)
                        rows.append(r)
                        stages = " ".join(_seconds(r, key, width) for key, width in STAGES)
                        lines.append(f"{number:4d} {r['n_hits']:7,d} {setting:12s} {code:6s} {stages} "
                                     f"{r['seconds_total']:6.2f} {r['cpu_seconds']:6.2f} {r['score']:7.4f} "
                                     f"{r['tracks']:6,d}  {load}")
                        print(lines[-1], flush=True)
                    moved = _moved_hits(subs["before"], subs["after"])
                    rows[-1]["hits_moved_from_before"] = moved
                    lines.append(f"{'':4s} hits in another track than before: {moved}")
                    print(lines[-1], flush=True)
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()
            time.sleep(1.0)
    RESULTS.mkdir(exist_ok=True)
    name = f"gnn_speed_{args.tag}" if args.tag else "gnn_speed"
    (RESULTS / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

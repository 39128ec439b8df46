"""`ckf` with and without its later passes (displaced and strip seeds) on realistic and generated events.

    python benchmarks/ckf_passes.py [--lists 1001 1003] [--generated 2] [--kinds lists generated secondaries]
                                    [--name ckf_passes]

The events: the real particle lists of development events 1001 and 1003 simulated by deepreco (seed 1, the events
of `benchmarks/acts_tracking.py` and `fit.py`, in /tmp/deepreco-bench/fit-reallists), and the first ``--generated``
events of `benchmarks/tracking.py` (Pythia 8 ttbar + mu = 200, seed 1000), without material secondaries and with
them (`simulate_event(secondaries=True)`); each folder is made when missing. On each event `ckf` runs twice, on one
thread: with the first pass only (``displaced_d0_max=0, outer_d0_max=0``: the `ckf` before issue 20) and with its
defaults. Per run: the TrackML score, the efficiency and fake rate of `deepreco.metrics.evaluate`, the wall and the
process CPU seconds of the reconstruction, and the score's weight lost on particles by production radius
(not found, or found with part of their weight). Results: ``benchmarks/results/<name>.txt`` and ``.json``,
written again after each run (``--kinds``: which of the three kinds of events to run, e.g. one per process).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LISTS = Path("/work/shared/data/trackml/train")
BENCH = Path("/tmp/deepreco-bench")
CONFIGS = {"first pass only": {"displaced_d0_max": 0.0, "outer_d0_max": 0.0}, "default": {}}
RADII = [-1.0, 1.0, 10.0, 40.0, 100.0, 200.0, 2000.0]


def _events(lists: list[int], n_generated: int, kinds: list[str]) -> list[tuple[str, Path]]:
    from deepreco.simulate.dataset import simulate_dataset

    out = []
    for number in lists if "lists" in kinds else []:
        folder = BENCH / "fit-reallists" / str(number)
        if not any(folder.glob("*-hits.parquet")):  # as benchmarks/acts_tracking.py makes it
            simulate_dataset("trackml", 1, folder, seed=1, format="parquet", first_event_id=number,
                             particles=str(LISTS / f"event{number:09d}-particles.csv.gz"))
        out.append((f"list {number}", folder))
    for extra, secondaries in (("", False), ("-secondaries-soft", True)):
        if ("secondaries" if secondaries else "generated") not in kinds:
            continue
        folder = BENCH / f"ttbar-mu200-seed1000-n{n_generated}{extra}"
        if not folder.is_dir() or not any(folder.iterdir()):
            simulate_dataset("ttbar", n_generated, folder, seed=1000, format="parquet", workers=1, pileup=200,
                             secondaries=secondaries)
        kind = "generated, secondaries" if secondaries else "generated"
        out += [(f"{kind} {i}", folder) for i in range(n_generated)]
    return out


def _lost_by_radius(event, tracks) -> list[float]:
    from deepreco.metrics.score import good_tracks, track_table

    table = track_table(event.truth, tracks)
    good = good_tracks(table)
    captured = pd.Series(table.major_weight[good], index=table.particle_ids[table.major[good]]).groupby(level=0).sum()
    weight = event.truth.groupby("particle_id")["weight"].sum() / table.total_weight
    weight = weight[weight.index != 0]
    particles = event.particles.set_index("particle_id").reindex(weight.index)
    lost = weight - captured.reindex(weight.index).fillna(0.0)
    radius = np.hypot(particles["vx"], particles["vy"])
    return lost.groupby(pd.cut(radius, RADII), observed=False).sum().tolist()


def main() -> None:
    from deepreco.io import read_event
    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, nargs="+", default=[1001, 1003])
    parser.add_argument("--generated", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=["lists", "generated", "secondaries"],
                        choices=["lists", "generated", "secondaries"])
    parser.add_argument("--name", default="ckf_passes")
    args = parser.parse_args()
    if any(not 1000 <= n <= 1009 for n in args.lists):
        raise SystemExit("only the development lists 1000-1009")
    rows = []
    for name, folder in _events(args.lists, args.generated, args.kinds):
        files = sorted(folder.glob("*-hits.parquet"))
        index = int(name.split()[-1]) if name.startswith("generated") else 0
        event = read_event(files[index])
        for config, params in CONFIGS.items():
            method = get_method("ckf", **params)
            wall, cpu = time.perf_counter(), time.process_time()
            tracks = method.reconstruct(event)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            result = evaluate(event.truth, event.particles, tracks)
            row = {"event": name, "hits": len(event.hits), "config": config, "score": result["score"],
                   "efficiency": result["efficiency"], "fake_rate": result["fake_rate"],
                   "tracks": result["n_tracks"], "wall_s": wall, "cpu_s": cpu,
                   "lost_by_radius": _lost_by_radius(event, tracks)}
            rows.append(row)
            print(f"{name:26s} {config:16s} {row['score']:.4f} cpu {cpu:.1f} s wall {wall:.1f} s", flush=True)
            _write(args, rows)


def _write(args, rows: list[dict]) -> None:
    load = os.getloadavg()[0]
    lines = [f"# python benchmarks/ckf_passes.py --lists {' '.join(map(str, args.lists))} --generated "
             f"{args.generated} --kinds {' '.join(args.kinds)} --name {args.name} "
             f"({time.strftime('%Y-%m-%d %H:%M')}, one thread; load average at the end {load:.1f} "
             f"on {os.cpu_count()} cores: the wall clock is stretched by other jobs, the CPU seconds are the work)",
             "", f"{'event':26s} {'hits':>7s} {'ckf':16s} {'score':>6s} {'eff.':>6s} {'fakes':>6s} {'tracks':>6s} "
             f"{'CPU s':>6s} {'wall s':>7s}  score lost by production radius (mm) "
             + " ".join(f"{a:g}-{b:g}" for a, b in zip(RADII[:-1], RADII[1:], strict=True))]
    for r in rows:
        lines.append(f"{r['event']:26s} {r['hits']:7d} {r['config']:16s} {r['score']:6.4f} {r['efficiency']:6.4f} "
                     f"{r['fake_rate']:6.4f} {r['tracks']:6d} {r['cpu_s']:6.1f} {r['wall_s']:7.1f}  "
                     + " ".join(f"{x:.4f}" for x in r["lost_by_radius"]))
    for kind in ("list", "generated ", "generated, secondaries"):
        for config in CONFIGS:
            sel = [r for r in rows if r["event"].startswith(kind) and r["config"] == config]
            if sel:
                lines.append(f"mean {kind.strip():22s} {config:16s} score {np.mean([r['score'] for r in sel]):.4f}, "
                             f"CPU {np.mean([r['cpu_s'] for r in sel]):.1f} s an event")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.txt").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{args.name}.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

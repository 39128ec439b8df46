"""Calorimeter clustering benchmark (seed 002): CLUE against GravNet and DGCNN with object condensation, and
the DRN's energies, on the same simulated events.

    python benchmarks/calo.py                   # 100 events, the distance scan, the time scan up to ~100k hits
    python benchmarks/calo.py --events 20 --quick

Writes benchmarks/results/calo.json, calo.md (the README table) and calo_*.png. Timings are one torch thread
on whatever else runs on the machine at the time, after one warm-up call of each method (numba's kernels load
once a process, see ``deepreco.calo.evaluate.warm_up``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from deepreco.calo import plots
from deepreco.calo.evaluate import DEFAULT_METHODS, efficiency_vs_distance, evaluate, timing_vs_hits
from deepreco.calo.methods import get_method
from deepreco.calo.simulate import gun_events


def _f(v, digits=3):
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def table(result: dict) -> str:
    lines = [f"{result['events']} gun events (seed {result['seed']}), {result['hits_per_event']:.0f} hits an event; "
             "efficiency / fake rate as in `deepreco.calo.metrics`; resolution = 68 % half-width / median of "
             "E_reco / E_true of found particles.", "",
             "| method | efficiency | fake rate | response | resolution | EM res. | had. res. | MIP eff. | "
             "hit class acc. | s / event (wall) | CPU s / event | peak MB |", "|" + " --- |" * 12]
    for name, s in result["methods"].items():
        k = s["per_kind"]
        lines.append(f"| {name} | {_f(s['efficiency'])} | {_f(s['fake_rate'])} | {_f(s['energy_response'])} | "
                     f"{_f(s['energy_resolution'])} | {_f(k['em']['energy_resolution'])} | "
                     f"{_f(k['had']['energy_resolution'])} | {_f(k['mip']['efficiency'])} | "
                     f"{_f(s.get('hit_class_accuracy'))} | {_f(s['seconds_per_event'])} | "
                     f"{_f(s['cpu_seconds_per_event'])} | {s['peak_memory_mb']:.0f} |")
    lines += ["", f"On the {result.get('common_particles', 0)} showering particles that every method found "
              "(the same sample for all):", "", "| method | response | resolution | EM res. | had. res. |",
              "|" + " --- |" * 5]
    for name, s in result["methods"].items():
        c = s.get("common", {})
        lines.append(f"| {name} | {_f(c.get('energy_response'))} | {_f(c.get('energy_resolution'))} | "
                     f"{_f(c.get('em_resolution'))} | {_f(c.get('had_resolution'))} |")
    return "\n".join(lines)


def markdown(df) -> str:
    """A DataFrame as a markdown table (without the optional tabulate package)."""
    df = df.reset_index()
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rows = ["| " + " | ".join(_f(v) if isinstance(v, float) else str(v) for v in row) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, "|" + " --- |" * len(df.columns), *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smaller distance and time scans")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = evaluate(args.events, args.seed, DEFAULT_METHODS, args.models_dir, log=log)
    clusterers = ("clue", "gravnet", "edgeconv")
    dist = efficiency_vs_distance(clusterers, distances=(10, 20, 40, 80) if args.quick else (10, 20, 30, 50, 80, 120),
                                  n_per=8 if args.quick else 20, seed=args.seed, models_dir=args.models_dir)
    sizes = (20, 100) if args.quick else (20, 100, 300, 700, 1200)
    timing = timing_vs_hits(clusterers, sizes, seed=args.seed, models_dir=args.models_dir, log=log)
    result["efficiency_vs_distance"] = dist.to_dict("records")
    result["timing_vs_hits"] = timing.to_dict("records")
    result["machine"] = f"{platform.machine()}, 1 torch thread, torch {torch.__version__} (shared 2-core machine)"
    result["benchmark_seconds"] = time.perf_counter() - t0
    (args.out / "calo.json").write_text(json.dumps(result, indent=1))
    md = table(result) + "\n\nEfficiency against the distance of two 20 GeV photons at the face:\n\n" + \
        markdown(dist.pivot(index="distance_mm", columns="method", values="efficiency")) + \
        "\n\nWall seconds per event against hits (pile-up-like events):\n\n" + \
        markdown(timing.pivot_table(index=["particles", "hits"], columns="method", values="seconds")) + \
        "\n\nCPU seconds per event against hits:\n\n" + \
        markdown(timing.pivot_table(index=["particles", "hits"], columns="method", values="cpu_seconds"))
    (args.out / "calo.md").write_text(md + "\n")
    plots.resolution_vs_energy(result, args.out / "calo_resolution_vs_energy.png")
    plots.efficiency_vs_distance(dist, args.out / "calo_efficiency_vs_distance.png")
    plots.time_vs_hits(timing, args.out / "calo_time_vs_hits.png")
    event = next(iter(gun_events(1, seed=args.seed)))
    for name in clusterers:
        hit_table, _ = get_method(name, args.models_dir).reconstruct(event)
        plots.event_display(event, hit_table, args.out / f"calo_event_{name}.png", f"seed {args.seed}: {name}")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Two (or more) gnn model files side by side on realistic and generated events: TrackML score, efficiency,
fakes, duplicates and seconds an event, each model in its own process on one thread.

    python benchmarks/gnn_models.py --models A.pt B.pt [--lists 1001,1003] [--sims 3] [--generated 2] [--tag NAME]

The realistic events: the real TrackML particle lists of development events 1001 and 1003 (lists the realistic
training of issue 20 leaves out), each simulated ``--sims`` times (events 0.. of a `simulate_dataset` run with
seed 1). The generated events: the tracking benchmark's ttbar + mu = 200 events (seed 1000, the first
``--generated``; made when missing). A model given as ``shipped`` is the one packaged with deepreco. Results
go to ``benchmarks/results/gnn_models[_TAG].txt`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path("/tmp/deepreco-bench")
TRACKML = Path("/work/shared/data/trackml/train")


def _run(model: str | None, data: str, n_events: int, queue) -> None:
    from deepreco.threads import set_threads

    set_threads(1)
    from deepreco.io import Dataset
    from deepreco.reconstruct import evaluate_method

    result = evaluate_method(Dataset(data), "gnn", n_events=n_events,  # the networks' own tracks
                             params={"model": model, "kalman": False, "later_passes": False})
    result["load"] = os.getloadavg()[0]
    queue.put(result)


def _datasets(lists: list[int], sims: int, generated: int) -> dict[str, tuple[Path, int]]:
    from deepreco.io import Dataset
    from deepreco.simulate.dataset import simulate_dataset

    sets = {}
    for list_id in lists:
        out = DATA / f"gnn-models-{list_id}-seed1-n{sims}"
        if not (out.is_dir() and len(Dataset(out)) == sims):
            simulate_dataset("trackml", sims, out, seed=1, format="parquet", overwrite=True,
                             particles=str(TRACKML / f"event00000{list_id}-particles.csv.gz"))
        sets[f"list {list_id}"] = (out, sims)
    if generated:
        out = DATA / f"ttbar-mu200-seed1000-n{max(generated, 2)}"
        if not (out.is_dir() and len(Dataset(out)) >= generated):
            simulate_dataset("ttbar", max(generated, 2), out, seed=1000, format="parquet", overwrite=True, pileup=200)
        sets["generated ttbar mu=200"] = (out, generated)
    return sets


def _row(name: str, model: str, r: dict) -> str:
    scores = " ".join(f"{e['score']:.4f}" for e in r["events"])
    return (f"{name:24s} {model:>12s} {r['score']:7.4f} {r['efficiency']:7.4f} {r['fake_rate']:7.4f} "
            f"{r['duplicate_rate']:7.4f} {r['seconds_per_event']:8.2f} {r['load']:5.1f}  {scores}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="gnn model files, or 'shipped'")
    parser.add_argument("--lists", default="1001,1003")
    parser.add_argument("--sims", type=int, default=3, help="simulations of each list")
    parser.add_argument("--generated", type=int, default=2, help="generated ttbar events")
    parser.add_argument("--tag", default=None)
    args = parser.parse_args()
    sets = _datasets([int(x) for x in args.lists.split(",")], args.sims, args.generated)
    ctx = mp.get_context("spawn")
    results: dict = {}
    header = (f"{'events':24s} {'model':>12s} {'score':>7s} {'eff.':>7s} {'fakes':>7s} {'dupl.':>7s} "
              f"{'s/event':>8s} {'load':>5s}  scores per event")
    lines = [f"machine: {platform.platform()}, {os.cpu_count()} CPUs, one thread per model, each in its own process; "
             "load: the 1-minute load average after the run (the machine is shared)",
             "efficiency: particles of pT > 1 GeV; fakes and duplicates: shares of the tracks", "", header]
    print(header, flush=True)
    for name, (data, n) in sets.items():
        for model in args.models:
            queue = ctx.Queue()
            proc = ctx.Process(target=_run, args=(None if model == "shipped" else model, str(data), n, queue))
            proc.start()
            result = queue.get()
            proc.join()
            label = "shipped" if model == "shipped" else Path(model).name
            results.setdefault(name, {})[label] = {**result, "data": str(data), "model": model}
            lines.append(_row(name, label, result))
            print(lines[-1], flush=True)
    stem = "gnn_models" + (f"_{args.tag}" if args.tag else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()

"""DeepCore trained with the seed's recipe against the shipped model, seed-level figures on the same events.

    python benchmarks/recipe_deepcore.py --model build/deepcore-recipe.pt [--events 100] [--seed 0]

Events: the Pythia dijets of `benchmarks/deepcore.py` (seeds ``--seed`` onwards; the models were trained on seeds
1,000,000 onwards), one thread, one process. Rows: the shipped model; the new model on every window (as
``deepreco deepcore evaluate`` runs it today); the new model on the windows it was trained on (merged clusters and
the jet axis, its file's ``windows``). Also how well "merged" (charge > 1.5 one-track charges) finds the clusters
of the jet cores that hold more than one particle (truth). Seeds cleaned with the seed's cuts (50 um, 0.002). Writes
``benchmarks/results/recipe_deepcore.txt`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from functools import partial
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def run(events: int, seed: int, model: Path, windows: dict) -> dict:
    """`deepcore.evaluate.evaluate` with the windows built as ``windows`` says."""
    from deepreco.deepcore import evaluate as ev
    from deepreco.deepcore.windows import build_windows

    # evaluate builds every window; the model's own windows are swapped in here (in this process: workers=1)
    ev.build_windows = partial(build_windows, **windows)
    try:
        t0 = time.perf_counter()
        r = ev.evaluate(events, seed, model)
        r["wall_seconds"] = time.perf_counter() - t0
    finally:
        ev.build_windows = build_windows
    return r


def merged_counts(events: int, seed: int) -> dict:
    """Core clusters (the windows' clusters) called merged, against those with more than one particle."""
    from deepreco.deepcore.events import make_event
    from deepreco.deepcore.windows import directions, merged

    n = {"clusters": 0, "multi": 0, "called": 0, "called_multi": 0}
    for i in range(events):
        event = make_event(seed + i)
        d = directions(event)
        cl = event.clusters.iloc[d["cluster"].to_numpy()]
        multi, called = cl["n_particles"].to_numpy() > 1, merged(cl, d["eta"].to_numpy())
        for key, value in (("clusters", len(cl)), ("multi", multi.sum()), ("called", called.sum()),
                           ("called_multi", (called & multi).sum())):
            n[key] += int(value)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, required=True, help="the model trained with the recipe")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from deepreco.deepcore.evaluate import HEADER, SHIPPED_MODEL, format_row
    from deepreco.deepcore.train import load_model

    net, info = load_model(args.model)
    rows = {"shipped": run(args.events, args.seed, SHIPPED_MODEL, {}),
            "recipe_all_windows": run(args.events, args.seed, args.model, {}),
            "recipe_its_windows": run(args.events, args.seed, args.model, net.windows)}
    first = rows["shipped"]
    keys = ("new_loss_from", "merged_only", "jet_axis", "lr_scale", "events", "epochs", "samples", "steps",
            "seconds", "threads")
    out = {"events": args.events, "first_seed": args.seed, "jets": first["jets"], "tracks": first["tracks"],
           "machine": f"{platform.platform()}, 2 CPUs shared with other helpers, one thread",
           "model": {k: info.get(k) for k in keys}, "windows": net.windows,
           "rows": {name: {**r["deepcore"], "wall_seconds": r["wall_seconds"]} for name, r in rows.items()},
           "baseline": first["baseline"], "merged": merged_counts(args.events, args.seed)}
    m = out["merged"]
    lines = [f"machine: {out['machine']}",
             f"events: {args.events} Pythia dijets (seeds {args.seed}..), {first['jets']} jets, {first['tracks']} "
             "simulated tracks (pT > 1 GeV, DeltaR < 0.1, crossing layer 2)",
             f"recipe model: {json.dumps(out['model'])}", "", HEADER]
    lines += [format_row(name, r["deepcore"]) for name, r in rows.items()]
    lines.append(format_row("baseline", first["baseline"]))
    lines += ["", f"merged clusters: {m['called']} of the {m['clusters']} core clusters called merged; "
              f"{m['called_multi']} of the {m['multi']} with more than one particle among them "
              f"({m['called_multi'] / max(m['multi'], 1):.3f}), purity {m['called_multi'] / max(m['called'], 1):.3f}"]
    lines += ["", "wall seconds of each evaluation (simulation included): "
              + ", ".join(f"{name} {r['wall_seconds']:.0f}" for name, r in rows.items())]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recipe_deepcore.json").write_text(json.dumps(out, indent=1))
    (RESULTS / "recipe_deepcore.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

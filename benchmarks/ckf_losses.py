"""Where `ckf` loses the TrackML score on realistic events: unfound particles and the hits found particles miss.

    python benchmarks/ckf_losses.py [--lists 1001 1003] [--configs default no-completion] [--name ckf_losses]

The events: the real particle lists of development events (1000-1009 only) simulated by deepreco with seed 1 (the
events of `benchmarks/ckf_passes.py`, in /tmp/deepreco-bench/fit-reallists, made when missing). `ckf` runs on one
thread per configuration (``default``; ``no-completion``: ``inward=False, gaps=False``, tracks not completed near
their seeds; ``no-gaps``: ``gaps=False``, extended inward of their seeds but not on the layers their seeds skip;
``later-7``: ``short_chi2_max=0``, so that every track of the later passes needs a hit more than
``displaced_min_hits`` / ``outer_min_hits`` (6 / 7 with session 19's defaults; 7 / 7 before, as before the rule
for their shortest tracks); ``first-pass``: no later passes;
``min-hits-4``: the first pass's tracks may have 4 hits). Per run, the score's weight lost (fractions of the
event's total weight):

- on particles no good track holds ("unfound"), and on particles a good track holds but not whole ("partial"),
  each for prompt particles (made within 1 mm of the beam line) and displaced ones;
- the hits of found prompt particles outside their track, by where they are against it: on a layer nearer the beam
  line than the track's first hit ("inward"), between its hits ("hole"), beyond its last ("outward"), on a layer
  it has a hit on ("same layer"); each either free or in another track.

Results: ``benchmarks/results/<name>.txt``, written again after each run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LISTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "trackml" / "train"
BENCH = Path("/tmp/deepreco-bench")
CONFIGS = {"default": {}, "no-completion": {"inward": False, "gaps": False}, "no-gaps": {"gaps": False},
           "later-7": {"short_chi2_max": 0.0},
           "first-pass": {"displaced_d0_max": 0.0, "outer_d0_max": 0.0}, "min-hits-4": {"min_hits": 4}}
WHERE = ["inward", "hole", "outward", "same layer"]


def _event(number: int):
    from deepreco.io import read_event
    from deepreco.simulate.dataset import simulate_dataset

    folder = BENCH / "fit-reallists" / str(number)
    if not any(folder.glob("*-hits.parquet")):
        simulate_dataset("trackml", 1, folder, seed=1, format="parquet", first_event_id=number,
                         particles=str(LISTS / f"event{number:09d}-particles.csv.gz"))
    return read_event(sorted(folder.glob("*-hits.parquet"))[0])


def losses(event, tracks: pd.DataFrame) -> dict[str, float]:
    """The score's weight lost, by kind (module docstring), as fractions of the event's total weight."""
    from deepreco.metrics.score import good_tracks, track_table

    truth = event.truth[["hit_id", "particle_id", "weight"]].merge(tracks, on="hit_id", how="left")
    truth["track"] = truth["track_id"].fillna(-1).astype(np.int64)
    total = float(truth["weight"].sum())
    table = track_table(event.truth, tracks)
    good = np.flatnonzero(good_tracks(table) & (table.particle_ids[table.major] != 0))
    good = good[good < table.n_assigned]  # not the one-hit tracks of the hits left out
    owner = pd.Series(table.track_ids[good], index=table.particle_ids[table.major[good]])
    owner = owner[~owner.index.duplicated()]  # a particle has at most one good track (more than half its hits)
    particles = event.particles.set_index("particle_id")
    weight = truth[truth["particle_id"] != 0].groupby("particle_id")["weight"].sum()
    captured = truth[truth["particle_id"].isin(owner.index)]
    captured = captured[captured["track"].to_numpy() == owner.reindex(captured["particle_id"]).to_numpy()]
    lost = weight - captured.groupby("particle_id")["weight"].sum().reindex(weight.index).fillna(0.0)
    vertex = particles.reindex(weight.index)
    prompt = np.hypot(vertex["vx"], vertex["vy"]).to_numpy() < 1.0
    found = weight.index.isin(owner.index)
    out = {}
    for name, sel in (("prompt", prompt), ("displaced", ~prompt)):
        out[f"{name} unfound"] = float(lost[sel & ~found].sum()) / total
        out[f"{name} partial"] = float(lost[sel & found].sum()) / total
    # the missed hits of found prompt particles, by where they are against the particle's track
    hits = event.hits.set_index("hit_id")
    hit = truth[truth["particle_id"].isin(weight.index[found & prompt])].join(
        hits[["x", "y", "z", "volume_id", "layer_id"]], on="hit_id")
    hit["own"] = hit["track"].to_numpy() == owner.reindex(hit["particle_id"]).to_numpy()
    hit["dist"] = np.sqrt(hit["x"] ** 2 + hit["y"] ** 2 + hit["z"] ** 2)
    hit["layer"] = hit["volume_id"] * 100 + hit["layer_id"]
    span = hit[hit["own"]].groupby("particle_id")["dist"].agg(["min", "max"])
    own_layers = set(zip(hit.loc[hit["own"], "particle_id"], hit.loc[hit["own"], "layer"], strict=True))
    miss = hit[~hit["own"]].join(span, on="particle_id")
    same = np.array([key in own_layers for key in zip(miss["particle_id"], miss["layer"], strict=True)], bool)
    where = np.where(same, "same layer", np.where(miss["dist"] < miss["min"], "inward",
                                                  np.where(miss["dist"] > miss["max"], "outward", "hole")))
    for name in WHERE:
        sel = where == name
        out[f"{name}, free"] = float(miss["weight"][sel & (miss["track"] < 0).to_numpy()].sum()) / total
        out[f"{name}, other track"] = float(miss["weight"][sel & (miss["track"] >= 0).to_numpy()].sum()) / total
    return out


def main() -> None:
    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, nargs="+", default=[1001, 1003])
    parser.add_argument("--configs", nargs="+", default=["default", "no-completion"], choices=list(CONFIGS))
    parser.add_argument("--name", default="ckf_losses")
    args = parser.parse_args()
    if any(not 1000 <= n <= 1009 for n in args.lists):
        raise SystemExit("only the development lists 1000-1009")
    rows = []
    for number in args.lists:
        event = _event(number)
        for config in args.configs:
            cpu = time.process_time()
            tracks = get_method("ckf", **CONFIGS[config]).reconstruct(event)
            cpu = time.process_time() - cpu
            result = evaluate(event.truth, event.particles, tracks)
            rows.append({"event": f"list {number}", "config": config, "score": result["score"],
                         "fake_rate": result["fake_rate"], "cpu_s": cpu, **losses(event, tracks)})
            print(f"list {number} {config:10s} {result['score']:.4f} cpu {cpu:.1f} s", flush=True)
            _write(args, rows)


def _write(args, rows: list[dict]) -> None:
    keys = [k for k in rows[0] if k not in ("event", "config")]
    lines = [f"# python benchmarks/ckf_losses.py --lists {' '.join(map(str, args.lists))} --configs "
             f"{' '.join(args.configs)} --name {args.name} ({time.strftime('%Y-%m-%d %H:%M')}, one thread; "
             f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
             "# the score's weight lost, as fractions of the event's total weight; the last eight: the hits of found "
             "prompt particles outside their track", ""]
    lines.append(f"{'':28s}" + "".join(f"{r['event'] + ' ' + r['config']:>24s}" for r in rows))
    for key in keys:
        fmt = "{:24.1f}" if key == "cpu_s" else "{:24.4f}"
        lines.append(f"{key:28s}" + "".join(fmt.format(r[key]) for r in rows))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""`gnn`'s tracks followed again by `ckf`'s Kalman filter (`CKFTracks.follow`), and `ckf`'s later passes after them.

    python benchmarks/gnn_kalman.py [--lists 1000 ... 1009] [--generated 3] [--threads 1] [--more] [--passes]
        [--tag NAME]

On each event the shipped `gnn` model runs once (its tracks as the method builds them, ``min_hits`` 3); then, from
those tracks, one thread each (NumPy):

* ``gnn``: the tracks as they are;
* ``+ later``: `ckf`'s displaced and outer passes on the hits they leave free (``GNNTracks(later_passes=True)``);
* ``+ kalman``: each track's three innermost hits followed as a seed by `ckf`'s filter, a second round for the
  tracks not made without their innermost hit, the tracks it does not make kept on the hits left free when they
  have at least 3 (``GNNTracks(kalman=True)``, the default);
* ``+ kalman + later``: both (``GNNTracks(kalman=True, later_passes=True)``); the later passes come before the
  graph's tracks take back the hits the filter left free.

Since session 20 the last three end by joining a particle's pieces (`CKFTracks` ``join``, its default); the
``--passes`` rows name it.

Events: TrackML's real particle lists of development events ``--lists`` (1000-1009; never 1010-1020), simulated
with seed 1 (`real_lists.real_list_folder`, the events of ``benchmarks/tracking.py --lists``), and the first
``--generated`` events of ``benchmarks/tracking.py``'s generated ttbar + mu = 200 (seed 1000). Per set: TrackML
score, efficiency (pT > 1 GeV), perfect efficiency, fake and duplicate rates, seconds per event (the gnn's,
everything up to its tracks, and each variant's own step), and where the score's weight goes (`_losses`).
``--more``: also the settings tried and not taken (`MORE`); ``--passes [NAME ...]``: ``+ kalman + later`` with other
settings of the later passes (`PASSES`, `CKFTracks` parameters; no names: all). Results:
``benchmarks/results/gnn_kalman.txt`` / ``.json`` (``--tag NAME``: ``gnn_kalman_NAME.*``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = ("gnn", "+ later", "+ kalman", "+ kalman + later")
# --more: settings tried and not taken
MORE = ("+ kalman, 1 round", "+ kalman, 3 rounds", "+ kalman, 1 branch", "+ kalman, no completion",
        "+ kalman, keep 5")
# --passes: the later passes' settings (CKFTracks parameters), each with the Kalman step before them; the names
# of session 18 are changes to its defaults (S18), which session 19 changed (outer seeds from 0.2 GeV,
# later_outward, 5-hit tracks from the pixel seeds, outer_soft_pt); session 20 joined a particle's pieces (join)
S18 = {"outer_pt_min": 0.3, "later_outward": False, "displaced_min_hits": 6, "outer_min_hits": 6, "outer_soft_pt": 0.3,
       "join": False}
PASSES = {"+ k + l, outer pT 0.2": {**S18, "outer_pt_min": 0.2},
          "+ k + l, outer pT 0.15": {**S18, "outer_pt_min": 0.15},
          "+ k + l, displaced pT 0.1": {**S18, "displaced_pt_min": 0.1},
          "+ k + l, displaced d0 100": {**S18, "displaced_d0_max": 100.0},
          "+ k + l, 5 hits": {**S18, "displaced_min_hits": 5, "outer_min_hits": 5},
          "+ k + l, chi2 12": {**S18, "later_chi2_max": 12.0}, "+ k + l, 2 holes": {**S18, "later_max_holes": 2},
          "+ k + l, outer pT 0.2, 5 hits": {**S18, "outer_pt_min": 0.2, "displaced_min_hits": 5, "outer_min_hits": 5},
          "+ k + l, outer pT 0.15, 5 hits": {**S18, "outer_pt_min": 0.15, "displaced_min_hits": 5,
                                             "outer_min_hits": 5},
          "+ k + l, outward": {**S18, "later_outward": True},
          "+ k + l, outer pT 0.2, outward": {**S18, "outer_pt_min": 0.2, "later_outward": True},
          "+ k + l, outer pT 0.15, outward": {**S18, "outer_pt_min": 0.15, "later_outward": True},
          "+ k + l, session 18": S18,
          "+ k + l, outer pT 0.2, outward, pixel 5 hits": {"join": False},  # session 19's defaults
          "+ k + l, session 19, joined": {},  # session 20's defaults
          }


def _variants(event, labels, more: bool, passes: list | None = None):
    """(name, labels, seconds of its own step) for each of `VARIANTS` (and `MORE`)."""
    from deepreco.reconstruct.ckf import CKFTracks

    ckf = CKFTracks()
    yield "gnn", labels, 0.0
    runs = [("+ later", lambda: ckf.extend(event, labels)),
            ("+ kalman", lambda: ckf.follow(event, labels, keep=3)),
            ("+ kalman + later", lambda: ckf.follow(event, labels, keep=3, later=True))]
    if more:
        runs += [("+ kalman, 1 round", lambda: ckf.follow(event, labels, rounds=1)),
                 ("+ kalman, 3 rounds", lambda: ckf.follow(event, labels, rounds=3)),
                 ("+ kalman, 1 branch", lambda: CKFTracks(n_branches=1, max_candidates=1).follow(event, labels)),
                 ("+ kalman, no completion", lambda: CKFTracks(inward=False, gaps=False).follow(event, labels)),
                 ("+ kalman, keep 5", lambda: ckf.follow(event, labels, keep=5))]
    if passes:
        runs += [(name, lambda p=PASSES[name]: CKFTracks(**p).follow(event, labels, keep=3, later=True))
                 for name in passes]
    for name, run in runs:
        t = time.perf_counter()
        out = run()
        yield name, out, time.perf_counter() - t


def _losses(event, labels) -> dict:
    """Where the score's weight goes (fractions of the event's): particles with no track of theirs (by the
    distance of their production vertex from the beam line) and the hits of found particles outside their
    track (in another track or in none). A particle's track holds more than half of its hits and they are more than
    half of the track's, as the TrackML score counts them."""
    import numpy as np
    import pandas as pd

    t = event.truth[["hit_id", "particle_id", "weight"]].copy()
    t["track"] = pd.Series(labels, index=event.hits["hit_id"].to_numpy()).reindex(t["hit_id"]).to_numpy()
    total = t["weight"].sum()
    on = t[t["track"] >= 0]
    pair = on.groupby(["track", "particle_id"]).size().rename("n").reset_index()
    pair["of_track"] = pair["track"].map(on.groupby("track").size())
    pair["of_particle"] = pair["particle_id"].map(t.groupby("particle_id").size())
    good = pair[(pair["particle_id"] != 0) & (2 * pair["n"] > pair["of_track"]) & (2 * pair["n"] > pair["of_particle"])]
    t = t.merge(good[["track", "particle_id"]].assign(matched=True), on=["track", "particle_id"], how="left")
    real = t[(t["particle_id"] != 0) & t["matched"].isna()]
    found = real["particle_id"].isin(good["particle_id"])
    parts = event.particles.set_index("particle_id")
    radius = real["particle_id"].map(np.hypot(parts["vx"], parts["vy"]))
    out = {f"unfound r {lo}-{hi} mm": float(real.loc[~found & (radius >= lo) & (radius < hi), "weight"].sum() / total)
           for lo, hi in ((0, 1), (1, 30), (30, np.inf))}
    out["found, hits in other tracks"] = float(real.loc[found & (real["track"] >= 0), "weight"].sum() / total)
    out["found, hits in no track"] = float(real.loc[found & (real["track"] < 0), "weight"].sum() / total)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lists", type=int, nargs="*", default=list(range(1000, 1010)))
    parser.add_argument("--generated", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--more", action="store_true", help="also the settings tried and not taken (MORE)")
    parser.add_argument("--passes", nargs="*", default=None,
                        help="also other settings of the later passes (PASSES; names, or none for all)")
    parser.add_argument("--tag", default=None, help="results in gnn_kalman_TAG.txt / .json")
    args = parser.parse_args()
    if any(not 1000 <= n <= 1009 for n in args.lists):
        raise SystemExit("--lists: development events 1000-1009 only (1010-1020 are for final checks)")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import pandas as pd
    import torch

    from deepreco.io import Dataset
    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method

    torch.set_num_threads(args.threads)
    sets = []
    if args.lists:
        from real_lists import real_list_folder

        folder = Path("/tmp/deepreco-bench/lists-seed1-" + "_".join(map(str, args.lists)))
        sets.append((f"real lists {args.lists[0]}-{args.lists[-1]}" if len(args.lists) > 1 else
                     f"real list {args.lists[0]}", Dataset(real_list_folder(args.lists, folder)), len(args.lists)))
    if args.generated:
        data = Path(f"/tmp/deepreco-bench/ttbar-mu200-seed1000-n{args.generated}")
        if not data.is_dir() or not any(data.iterdir()):
            raise SystemExit(f"{data}: run `python benchmarks/tracking.py --events {args.generated}` first (it "
                             "simulates the events)")
        sets.append((f"generated ttbar mu = 200 (seed 1000), {args.generated} events",
                     Dataset(data), args.generated))
    gnn = get_method("gnn", kalman=False, later_passes=False)  # the graph's own tracks
    if args.passes is not None:
        args.passes = args.passes or list(PASSES)
        if unknown := [n for n in args.passes if n not in PASSES]:
            raise SystemExit(f"--passes: unknown {unknown}; known: {list(PASSES)}")
    variants = VARIANTS + MORE * args.more + tuple(args.passes or ())
    out = {}
    lines = [f"# python benchmarks/gnn_kalman.py --lists {' '.join(map(str, args.lists))} --generated "
             f"{args.generated} --threads {args.threads}" + " --more" * args.more
             + (" --passes" + "".join(f" '{n}'" for n in args.passes) if args.passes else "")
             + f" --tag {args.tag}" * bool(args.tag),
             f"# {platform.machine()}, {os.cpu_count()} usable cores, {args.threads} thread(s); the shipped gnn model; "
             "s = seconds per event: gnn = everything up to its tracks, the others their own step after it; "
             f"load before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}"]
    for title, events, n_events in sets:
        rows: dict = {v: [] for v in variants}
        for i, event in enumerate(events):  # read one at a time
            if i == n_events:
                break
            t = time.perf_counter()
            tracks = gnn.reconstruct(event)
            gnn_s = time.perf_counter() - t
            ids = pd.Series(tracks["track_id"].to_numpy(), index=tracks["hit_id"].to_numpy())
            labels = ids.reindex(event.hits["hit_id"].to_numpy()).fillna(-1).astype(np.int64).to_numpy()
            for name, lab, seconds in _variants(event, labels, args.more, args.passes):
                keep = np.flatnonzero(lab >= 0)
                sub = pd.DataFrame({"hit_id": event.hits["hit_id"].to_numpy()[keep], "track_id": lab[keep]})
                r = evaluate(event.truth, event.particles, sub)
                rows[name].append({k: float(r[k]) for k in ("score", "efficiency", "efficiency_perfect", "fake_rate",
                                                            "duplicate_rate")}
                                  | {"seconds": gnn_s if name == "gnn" else seconds} | _losses(event, lab))
            print(f"{title} event {i}: " + ", ".join(f"{v} {rows[v][-1]['score']:.4f} ({rows[v][-1]['seconds']:.1f} s)"
                                                      for v in variants), flush=True)
        mean = {v: {k: float(np.mean([r[k] for r in rows[v]])) for k in rows[v][0]} for v in variants}
        out[title] = {"events": n_events, "mean": mean, "per_event": rows}
        lines += ["", f"## {title}: {n_events} event(s)",
                  f"{'tracks':31s} {'score':>7s} {'eff.':>7s} {'perfect':>7s} {'fakes':>7s} {'dupl.':>7s} {'s':>6s}"]
        lines += [f"{v:31s} {m['score']:7.4f} {m['efficiency']:7.4f} {m['efficiency_perfect']:7.4f} "
                  f"{m['fake_rate']:7.4f} {m['duplicate_rate']:7.4f} {m['seconds']:6.2f}" for v, m in mean.items()]
        keys = [k for k in next(iter(mean.values())) if k.startswith(("unfound", "found"))]
        lines += ["", "where the weight goes (fractions of the event's): " + "; ".join(keys)]
        lines += [f"{v:31s} " + " ".join(f"{m[k]:7.4f}" for k in keys) for v, m in mean.items()]
    RESULTS.mkdir(exist_ok=True)
    name = f"gnn_kalman_{args.tag}" if args.tag else "gnn_kalman"
    (RESULTS / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

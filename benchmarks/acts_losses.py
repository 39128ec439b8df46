"""Where acts-ckf loses particles that ckf finds: seeding, following or ambiguity resolution, by |eta|, pT, layers.

    python benchmarks/acts_losses.py [--list 1001] [--params JSON] [--name acts_losses] [--data DIR]

One TrackML development particle list (1000-1009 only), simulated by deepreco (seed 1, the events of
`benchmarks/fit.py`). The particles of pT > 1 GeV with at least 4 hits; for each, whether acts-ckf (`ActsCKF.find`
with its stages) made a seed of three of its hits (*seeded*), a CKF track before the ambiguity resolution that
holds more than half of its hits and more than half of whose hits are its (*followed*), and a final track of that
kind (*found*, the double-majority efficiency); beside it, whether `ckf` found it. Broken down by |eta|, pT, the
number of pixel layers the particle has hits on, and the layer of its innermost hit. Results:
``benchmarks/results/<name>.txt`` and ``.json``; ``--params`` (a JSON object) sets acts-ckf's parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from real_lists import check_development, real_list_event

RESULTS = Path(__file__).resolve().parent / "results"


def _double_majority(hit_particle: dict, particle_nhits, tracks: list) -> set:
    """Particles that one of ``tracks`` (arrays of hit ids) holds in double majority."""
    import numpy as np

    found = set()
    for hits in tracks:
        pids = np.array([hit_particle.get(int(h), 0) for h in hits])
        if len(pids) == 0:
            continue
        values, counts = np.unique(pids, return_counts=True)
        k = int(np.argmax(counts))
        pid, n = int(values[k]), int(counts[k])
        if pid != 0 and 2 * n > len(pids) and 2 * n > particle_nhits.get(pid, 10**9):
            found.add(pid)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=int, default=1001)
    parser.add_argument("--data", default="/tmp/deepreco-bench/fit-reallists")
    parser.add_argument("--params", default="{}")
    parser.add_argument("--name", default="acts_losses")
    args = parser.parse_args()
    params = json.loads(args.params)
    check_development([args.list])
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import numpy as np
    import pandas as pd

    from deepreco.acts.ckf import PIXEL_VOLUMES, ActsCKF
    from deepreco.io import read_event
    from deepreco.metrics.tracking import match_particles
    from deepreco.reconstruct import get_method

    event = read_event(real_list_event(args.list, Path(args.data) / str(args.list), seed=1))
    truth, particles, hits = event.truth, event.particles, event.hits

    start = time.process_time()
    stages = ActsCKF(**params).find(event, stages=True)
    acts_cpu = time.process_time() - start
    start = time.process_time()
    ckf_tracks = get_method("ckf").reconstruct(event)
    ckf_cpu = time.process_time() - start

    pid = truth["particle_id"].to_numpy()
    hit_particle = dict(zip(truth["hit_id"].to_numpy().tolist(), pid.tolist(), strict=True))
    ids, nh = np.unique(pid[pid != 0], return_counts=True)
    particle_nhits = dict(zip(ids.tolist(), nh.tolist(), strict=True))
    pt = np.hypot(particles["px"], particles["py"]).to_numpy()
    eta = np.arcsinh(particles["pz"].to_numpy() / pt)
    nhits = particles["particle_id"].map(particle_nhits).fillna(0).to_numpy()
    sel = (pt > 1.0) & (nhits >= 4)
    table = pd.DataFrame({"particle_id": particles["particle_id"].to_numpy()[sel], "pt": pt[sel],
                          "abs_eta": np.abs(eta[sel])})

    # the particle's pixel layers and its innermost hit's layer
    merged = truth[["hit_id", "particle_id"]].merge(hits[["hit_id", "volume_id", "layer_id", "x", "y", "z"]],
                                                    on="hit_id")
    merged = merged[merged["particle_id"].isin(table["particle_id"])]
    pixel = merged[merged["volume_id"].isin(PIXEL_VOLUMES)]
    n_pixel = pixel.groupby("particle_id")[["volume_id", "layer_id"]].apply(
        lambda g: len(g.drop_duplicates()))
    merged = merged.assign(d=np.sqrt(merged["x"] ** 2 + merged["y"] ** 2 + merged["z"] ** 2))
    first = merged.sort_values("d").drop_duplicates("particle_id").set_index("particle_id")
    table["n_pixel_layers"] = table["particle_id"].map(n_pixel).fillna(0).astype(int).to_numpy()
    table["first_layer"] = (first["volume_id"].astype(str) + "-" + first["layer_id"].astype(str)).reindex(
        table["particle_id"]).to_numpy()

    seeded = set()
    for s in stages["seeds"]:
        p = {hit_particle.get(int(h), 0) for h in s}
        if len(p) == 1 and 0 not in p:
            seeded |= p
    followed = _double_majority(hit_particle, particle_nhits, stages["candidates"])
    found_acts = match_particles(truth, particles, stages["tracks"]).matched["double_majority"]
    found_ckf = match_particles(truth, particles, ckf_tracks).matched["double_majority"]
    table["seeded"] = table["particle_id"].isin(seeded)
    table["followed"] = table["particle_id"].isin(followed)
    table["found"] = found_acts[sel]
    table["ckf"] = found_ckf[sel]

    columns = ["seeded", "followed", "found", "ckf"]
    groups = {
        "|eta|": pd.cut(table["abs_eta"], [0, 1, 2, 3, 4, 10], right=False),
        "pT [GeV]": pd.cut(table["pt"], [1, 2, 5, 10, 1000], right=False),
        "pixel layers with hits": table["n_pixel_layers"].clip(upper=5),
        "innermost hit (volume-layer)": table["first_layer"],
    }
    rows, lines = [], []
    lines.append(f"acts-ckf ({params or 'defaults'}) stages against ckf, deepreco-simulated list {args.list}: "
                 "particles of pT > 1 GeV with "
                 f"at least 4 hits ({len(table)}); fraction seeded / followed / found by acts-ckf, found by ckf. "
                 f"CPU time one thread: acts-ckf {acts_cpu:.1f} s (stages read back), ckf {ckf_cpu:.1f} s.")
    lines.append(f"acts-ckf made {len(stages['seeds'])} seeds and {len(stages['candidates'])} CKF tracks, kept "
                 f"{stages['tracks']['track_id'].nunique()}.")
    lines.append(f"all: n {len(table)}  " + "  ".join(f"{c} {table[c].mean():.3f}" for c in columns))
    for name, key in groups.items():
        lines += ["", f"{name:>30} {'n':>6} {'seeded':>7} {'followed':>8} {'found':>6} {'ckf':>6}"]
        for value, g in table.groupby(key, observed=True):
            if len(g) < 5:
                continue
            fr = [g[c].mean() for c in columns]
            rows.append({"by": name, "bin": str(value), "n": len(g), **dict(zip(columns, fr, strict=True))})
            lines.append(f"{str(value):>30} {len(g):>6} {fr[0]:>7.3f} {fr[1]:>8.3f} {fr[2]:>6.3f} {fr[3]:>6.3f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"list": args.list, "params": params, "rows": rows},
                                                          indent=1))
    (RESULTS / f"{args.name}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

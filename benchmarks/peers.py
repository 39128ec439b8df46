"""The two C++ TrackML peers on the headline's events: Gorbunov's combinatorial tracker and fastrack.

    python benchmarks/peers.py --build BUILD_DIR [--lists 1000 ... 1009] [--fastrack GITDIR --gorbunov GITDIR]

The peers come from ``../shared/tools/peers`` (its README: fetch the two repositories, then ``build.sh`` builds
them into BUILD_DIR; given ``--fastrack`` and ``--gorbunov``, this script runs ``build.sh`` when BUILD_DIR has no
build yet). Events: the real development lists (1000-1009, seed 1) exactly as ``benchmarks/tracking.py --lists``
simulates them, written as CSV (the peers read CSV: hits, cells) into BUILD_DIR/events. Each peer runs on one
thread through ``run.sh``; its submission is scored by deepreco's TrackML score (equal to the
trackml-library's ``score_event``, ../shared/tools/peers/README.md), with ``deepreco score --json`` as the
peers' README does. Results:
``benchmarks/results/peers_lists.txt``: per event and the mean, the score and ``reconstruct_s`` (the peer's
reconstruction call alone, as run.sh prints it; a loaded machine makes it longer).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE.parents[1] / "shared" / "tools" / "peers"
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, required=True, help="the peers' build folder (build.sh's OUTDIR)")
    parser.add_argument("--lists", type=int, nargs="+", default=list(range(1000, 1010)))
    parser.add_argument("--fastrack", help="fastrack's git directory (to build when --build has none)")
    parser.add_argument("--gorbunov", help="Gorbunov's tracker's git directory (to build when --build has none)")
    args = parser.parse_args()
    import numpy as np
    import pandas as pd
    from real_lists import check_development, real_list_folder

    check_development(args.lists)
    build = args.build.resolve()
    if not (build / "gorbunov" / "gorbunov_reco").exists():
        if not (args.fastrack and args.gorbunov):
            raise SystemExit(f"{build}: no build of the peers; give --fastrack and --gorbunov (git directories)")
        subprocess.run(["bash", str(PEERS / "build.sh"), args.fastrack, args.gorbunov, str(build)], check=True)
    folder = real_list_folder(args.lists, Path("/tmp/deepreco-bench/lists-seed1-" + "_".join(map(str, args.lists))))
    events = build / "events"
    events.mkdir(exist_ok=True)
    rows = []
    for n in args.lists:
        prefix = events / f"event{n:09d}"
        for kind in ("hits", "cells", "truth", "particles"):
            if not Path(f"{prefix}-{kind}.csv").exists():
                pd.read_parquet(folder / f"event{n:09d}-{kind}.parquet").to_csv(f"{prefix}-{kind}.csv", index=False)
        subs = build / f"subs{n}"
        subs.mkdir(exist_ok=True)
        run = subprocess.run(["bash", str(PEERS / "run.sh"), str(build), str(prefix), str(subs), "1"],
                             capture_output=True, text=True, check=True)
        seconds = dict(re.findall(r"^(\w+)\s.*reconstruct_s=([\d.]+)", run.stdout + run.stderr, re.M))
        for peer in ("gorbunov", "fastrack"):
            scored = subprocess.run([sys.executable, "-m", "deepreco", "score", str(prefix),
                                     str(subs / f"{peer}-submission.csv"), "--json"],
                                    capture_output=True, text=True, check=True)
            score = json.loads(scored.stdout)["score"]
            rows.append((n, peer, score, float(seconds[peer])))
            print(f"{n} {peer:9s} score {score:.4f}  reconstruct_s {float(seconds[peer]):.2f}", flush=True)
    table = pd.DataFrame(rows, columns=["list", "peer", "score", "seconds"])
    lines = [f"# python benchmarks/peers.py --build BUILD --lists {' '.join(map(str, args.lists))}",
             f"# {platform.machine()}, python {platform.python_version()}; one thread each; the peers of "
             "../shared/tools/peers",
             f"events: the real development lists simulated with seed 1 ({folder}), written as CSV", "",
             f"{'list':>5s} {'Gorbunov score':>14s} {'s':>6s} {'fastrack score':>14s} {'s':>6s}"]
    for n in args.lists:
        g = table[(table["list"] == n) & (table["peer"] == "gorbunov")].iloc[0]
        f = table[(table["list"] == n) & (table["peer"] == "fastrack")].iloc[0]
        lines.append(f"{n:5d} {g['score']:14.4f} {g['seconds']:6.1f} {f['score']:14.4f} {f['seconds']:6.2f}")
    mean = table.groupby("peer")[["score", "seconds"]].agg(np.mean)
    lines.append(f"{'mean':>5s} {mean.loc['gorbunov', 'score']:14.4f} {mean.loc['gorbunov', 'seconds']:6.1f} "
                 f"{mean.loc['fastrack', 'score']:14.4f} {mean.loc['fastrack', 'seconds']:6.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "peers_lists.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

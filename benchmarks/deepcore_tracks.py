"""Time per event of the jet-core seeding and of track building through the strips, from each seed list.

    python benchmarks/deepcore_tracks.py [--events 10] [--seed 0] [--repeat 3]

Events: Pythia 8 QCD dijets as in ``benchmarks/deepcore.py`` (pT-hat 1.8 to 2.4 TeV, jets pT > 1 TeV, |eta| <
1.4; seeds ``--seed`` onwards, none of the shipped model's training seeds), their strip hits
(`deepreco.deepcore.strips`, seeded with (the event's seed, 26)). Seed lists: ``pairs`` (layer-1 / layer-2 pairs along
the jet), ``pairs_kmeans`` (the same after K-means splitting of merged clusters), ``deepcore`` (the shipped
network's cleaned seeds). Each list goes through the same track building (`deepreco.deepcore.tracking`, default
limits). Per event and stage the median of ``--repeat`` runs; settings: 1 thread, 2 threads, and 2 threads with
a ``yes > /dev/null`` process keeping another core busy (threads of torch and of the BLAS; the rest is numpy,
one thread). One warm-up event (the first network call) is not counted.

Also per event: tracks, and the distinct particles they are matched to (a track's particle: the one with most
of its hits, when it has at least 75 % of them). These are counts, not the issue's efficiency (item 3 defines
that, with the seed's cuts): here, tracks are what each seed list lets the building find.

Writes ``benchmarks/results/deepcore_tracks.txt`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = (("1 thread", 1, False), ("2 threads", 2, False), ("2 + busy", 2, True))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # a terminated run still ends its busy process (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from deepreco.deepcore.baseline import jetcore_seeds
    from deepreco.deepcore.detector import PixelBarrel
    from deepreco.deepcore.evaluate import SHIPPED_MODEL, deepcore_seeds
    from deepreco.deepcore.events import make_event
    from deepreco.deepcore.strips import strip_hits
    from deepreco.deepcore.tracking import BuildConfig, build_tracks
    from deepreco.deepcore.train import load_model

    det = PixelBarrel()
    net, _ = load_model(SHIPPED_MODEL)
    methods = {"pairs": lambda ev: jetcore_seeds(ev, det),
               "pairs_kmeans": lambda ev: jetcore_seeds(ev, det, split=True),
               "deepcore": lambda ev: deepcore_seeds(ev, net, det)[0]}
    events = []
    for i in range(args.events + 1):
        ev = make_event(args.seed + i)
        events.append((ev, strip_hits(ev.particles, np.random.default_rng((args.seed + i, 26)))))
    warm, events = events[0], events[1:]

    def timed(f):
        out, times = None, []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = f()
            times.append(time.perf_counter() - t0)
        return out, float(np.median(times))

    rows = []
    for setting, threads, busy in SETTINGS:
        hog = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if busy else None
        try:
            torch.set_num_threads(threads)
            with threadpool_limits(threads):
                for seed in methods.values():  # warm-up
                    build_tracks(warm[0], warm[1], seed(warm[0]))
                for ev, sh in events:
                    load = os.getloadavg()[0]
                    for name, seed in methods.items():
                        seeds, t_seed = timed(lambda ev=ev, seed=seed: seed(ev))
                        (tracks, _), t_build = timed(lambda ev=ev, sh=sh, seeds=seeds: build_tracks(ev, sh, seeds))
                        matched = tracks.loc[tracks["purity"] >= 0.75, "particle_id"].nunique()
                        rows.append({"setting": setting, "event": int(ev.event_id), "method": name,
                                     "jets": len(ev.jets), "clusters": len(ev.clusters), "strip_hits": len(sh),
                                     "seeds": len(seeds), "seconds_seeding": t_seed, "seconds_building": t_build,
                                     "seconds_total": t_seed + t_build, "tracks": len(tracks),
                                     "particles_found": int(matched), "load": load})
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()

    cfg = BuildConfig()
    lines = [f"# python benchmarks/deepcore_tracks.py --events {args.events} --seed {args.seed} "
             f"--repeat {args.repeat}",
             f"# {platform.platform()}, {len(os.sched_getaffinity(0))} usable cores shared with other jobs "
             f"(load average {min(r['load'] for r in rows):.1f} to {max(r['load'] for r in rows):.1f} at the events)",
             f"# dijet events {args.seed + 1}..{args.seed + args.events} (event {args.seed}: warm-up); building "
             f"limits: {cfg}",
             "# per event, mean over the events (each stage the median of the repeats): seconds of seeding, "
             "of building, total; seeds, tracks, distinct particles matched",
             "", f"{'setting':10s} {'method':13s} {'seeding':>8s} {'building':>8s} {'total':>8s} {'seeds':>7s} "
                 f"{'tracks':>7s} {'found':>7s}"]
    summary = {}
    for setting, _, _ in SETTINGS:
        for name in methods:
            sel = [r for r in rows if r["setting"] == setting and r["method"] == name]
            mean = {k: float(np.mean([r[k] for r in sel])) for k in (
                "seconds_seeding", "seconds_building", "seconds_total", "seeds", "tracks", "particles_found")}
            summary.setdefault(setting, {})[name] = mean
            lines.append(f"{setting:10s} {name:13s} {mean['seconds_seeding']:8.3f} {mean['seconds_building']:8.3f} "
                         f"{mean['seconds_total']:8.3f} {mean['seeds']:7.1f} {mean['tracks']:7.1f} "
                         f"{mean['particles_found']:7.1f}")
        s = summary[setting]
        ratio = s["deepcore"]["seconds_total"] / s["pairs_kmeans"]["seconds_total"]
        lines.append(f"{setting:10s} deepcore / pairs_kmeans time: {ratio:.2f} (the seed's CMS figure: 2.5 s / 16.6 s"
                     " = 0.15)")
    RESULTS.mkdir(exist_ok=True)
    _write(RESULTS / "deepcore_tracks.txt", "\n".join(lines) + "\n")
    _write(RESULTS / "deepcore_tracks.json", json.dumps({"summary": summary, "events": rows}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

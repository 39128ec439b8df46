"""Where the DBSCAN seeding of `lstm` loses tracks (issue 22): the first event of the tracking benchmark, learned arcs.

    python benchmarks/lstm_seed_losses.py [--data DIR]

The event is clustered once for each of the learned arcs' 99 hypotheses (one thread); a track is a particle with
at least 10 hits (`seeding.seed_quality`). Printed: the seeds of the final labelling (`fitted_seeds`, first hit
inside r = 200 mm) and of every hypothesis (`hypothesis_seeds`, with its defaults and with the looser helix fit
0.5 / 2.0 mm), each as seeds / perfect / seeded; then, of the tracks `hypothesis_seeds` leaves unseeded, those
with 5 of their hits in one cluster (one hit per module) in no hypothesis, and those with such a cluster whose
share of their hits (purity) is below 0.6 or not; and how many tracks have a perfect candidate seed before the
greedy merge (first hit anywhere, inside 200 mm, and with a window of 9 hits instead of 7).
Output: ``benchmarks/results/lstm_seed_losses.txt``.
"""

import argparse
import os
import time

from lstm_seeds import write_result

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    import numpy as np

    from deepreco.io import Dataset
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.dbscan import DBSCANTracks, _one_hit_per_module
    from deepreco.reconstruct.lstm import seed_quality
    from deepreco.reconstruct.lstm.seeding import fitted_seeds, hypothesis_seeds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/deepreco-bench/ttbar-mu200-seed1000-n3")
    args = parser.parse_args()
    event = next(iter(Dataset(args.data)))
    per = []
    start = time.perf_counter()
    final = DBSCANTracks(**get_method("lstm", arcs="learned").dbscan_parameters()).cluster(event.hits, per)
    lines = [f"event {event.event_id} of {args.data}: {len(event.hits)} hits, {len(per)} hypotheses clustered in "
             f"{time.perf_counter() - start:.0f} s (one thread, machine shared)", ""]
    xy = event.hits[["x", "y"]].to_numpy(np.float64)

    def figures(name, seeds):
        q = seed_quality(event, seeds)
        lines.append(f"{name}: {q['n_seeds']} seeds, {q['perfect']:.3f} perfect, {q['seeded']:.3f} of "
                     f"{q['tracks']} tracks seeded")
        print(lines[-1], flush=True)

    seeds = fitted_seeds(event, _one_hit_per_module(event.hits, final))
    figures("final labelling, seed fit", seeds[np.hypot(*xy[seeds[:, 0]].T) < 200.0])
    figures("every hypothesis, helix fit 0.5 / 2.0 mm", hypothesis_seeds(event, per, max_across=0.5, max_z=2.0)[0])
    seeds = hypothesis_seeds(event, per)[0]
    figures("every hypothesis, helix fit 0.3 / 1.0 mm (the default)", seeds)

    pid = event.truth.set_index("hit_id")["particle_id"].reindex(event.hits["hit_id"]).to_numpy(np.int64)
    particle, count = np.unique(pid[pid != 0], return_counts=True)
    tracks = particle[count >= 10]
    p = pid[seeds]
    seeded = np.isin(tracks, p[(p == p[:, :1]).all(axis=1) & (p[:, 0] != 0), 0])
    most = np.zeros(len(tracks))  # most hits of the track in one cluster, over the hypotheses
    purity = np.zeros(len(tracks))  # best share of such a cluster (>= 5 of its hits) that is the track's
    pools = {"first hit anywhere": set(), "first hit inside 200 mm": set(), "window 9": set()}
    for labels in per:
        labels = _one_hit_per_module(event.hits, labels.astype(np.int64))
        ok = (labels >= 0) & np.isin(pid, tracks)
        key, n = np.unique(np.column_stack([pid[ok], labels[ok]]), axis=0, return_counts=True)
        size = np.bincount(labels[labels >= 0])
        row = np.searchsorted(tracks, key[:, 0])
        np.maximum.at(most, row, n)
        five = n >= 5
        np.maximum.at(purity, row[five], n[five] / size[key[five, 1]])
        for window in (7, 9):
            s = fitted_seeds(event, labels, window=window, max_across=0.3, max_z=1.0)
            q = pid[s]
            perfect = (q == q[:, :1]).all(axis=1) & (q[:, 0] != 0)
            if window == 9:
                pools["window 9"].update(q[perfect, 0].tolist())
            else:
                pools["first hit anywhere"].update(q[perfect, 0].tolist())
                inside = np.hypot(*xy[s[:, 0]].T) < 200.0
                pools["first hit inside 200 mm"].update(q[perfect & inside, 0].tolist())
    miss = ~seeded
    lines += ["", f"tracks not seeded by every hypothesis's seeds: {miss.mean():.3f} of {len(tracks)}",
              f"  5 hits in one cluster in no hypothesis: {(miss & (most < 5)).mean():.3f}",
              f"  such a cluster, at best below 0.6 theirs: {(miss & (most >= 5) & (purity < 0.6)).mean():.3f}",
              f"  such a cluster, at least 0.6 theirs: {(miss & (most >= 5) & (purity >= 0.6)).mean():.3f}",
              "tracks with a perfect candidate seed before the greedy merge (helix fit 0.3 / 1.0 mm):"]
    lines += [f"  {name}: {len(set(tracks.tolist()) & pool) / len(tracks):.3f}" for name, pool in pools.items()]
    text = "\n".join(lines) + "\n"
    write_result("lstm_seed_losses.txt", text)
    print(text)


if __name__ == "__main__":
    main()

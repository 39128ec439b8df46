"""Time the TrackML metrics on a 100,000-hit event built from real TrackML data.

The event: the real hits of training event 1001 (93,680; topped up to ``--hits`` with copies of random real
hits under new hit ids) and its real particle list. Hits are given to particles at random (fixed seed) in
proportion to each particle's ``nhits``; the hits left over are noise (particle 0). tx, ty, tz are the
hit's position, tpx, tpy, tpz the particle's momentum. The submission is the truth with fixed shares of
hits moved to wrong tracks, tracks split in two, tracks merged, noise hits grouped in noise tracks, and hits
left unassigned.

Data is read from ``../shared/data/trackml/train/`` next to the repository when there, otherwise from the
copy shipped in the package (``deepreco/data/``).

    python benchmarks/score.py [--hits 100000] [--seed 1] [--repeat 5]

`make_event` is reused by ``compare_trackml_library.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "trackml" / "train"
EVENT = "event000001001"


def _open_table(name: str) -> pd.DataFrame:
    shared = SHARED / name
    if shared.is_file():
        return pd.read_csv(shared)
    with resources.as_file(resources.files("deepreco") / "data" / name) as path:
        return pd.read_csv(path)


def load_real(event: str = EVENT) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The real hits and particles of `event`, and where they were read from."""
    where = "shared" if (SHARED / f"{event}-hits.csv.gz").is_file() else "package"
    return _open_table(f"{event}-hits.csv.gz"), _open_table(f"{event}-particles.csv.gz"), where


def make_event(hits: pd.DataFrame, particles: pd.DataFrame, seed: int, n_hits: int | None = None,
               long_particles: int = 0, slow_particles: int = 0, missing_particles: int = 0,
               dropped_share: float = 0.0, tie_share: float = 0.0):
    """A truth (no weight column) and a particles table built from real hits and particles.

    Options for the corner cases of the weights: `long_particles` particles get 21 to 30 hits (nhits and
    truth alike); `slow_particles` get a pT below 0.05 GeV; `missing_particles` keep their hits but lose
    their particles-table row; a `dropped_share` of particle hits become noise (truth count below the
    table's nhits); a `tie_share` of hits take the tz of another hit of the same particle (tied order).
    """
    rng = np.random.default_rng(seed)
    particles = particles.copy()
    if n_hits is not None and n_hits > len(hits):
        extra = hits.iloc[rng.integers(0, len(hits), n_hits - len(hits))].copy()
        extra["hit_id"] = hits["hit_id"].max() + 1 + np.arange(len(extra))
        hits = pd.concat([hits, extra], ignore_index=True)
    n = len(hits)
    if long_particles:
        pick = rng.choice(len(particles), long_particles, replace=False)
        particles.loc[particles.index[pick], "nhits"] = rng.integers(21, 31, long_particles)
    if slow_particles:
        pick = rng.choice(len(particles), slow_particles, replace=False)
        scale = rng.uniform(0.001, 0.04, slow_particles) / np.hypot(particles["px"].to_numpy()[pick],
                                                                     particles["py"].to_numpy()[pick])
        for col in ("px", "py", "pz"):
            particles.loc[particles.index[pick], col] = particles[col].to_numpy()[pick] * scale

    labels = np.repeat(particles["particle_id"].to_numpy(), particles["nhits"].to_numpy())
    if labels.size > n:
        labels = rng.choice(labels, n, replace=False)
    labels = np.concatenate([labels, np.zeros(n - labels.size, dtype=labels.dtype)])
    labels = rng.permutation(labels)
    if dropped_share:
        labels[rng.random(n) < dropped_share] = 0

    tz = hits["z"].to_numpy().copy()
    if tie_share:
        # give a share of the particle hits the tz of the first hit of their particle
        order = np.argsort(labels, kind="stable")
        first = np.ones(n, dtype=bool)
        first[1:] = labels[order][1:] != labels[order][:-1]
        lead = order[np.maximum.accumulate(np.where(first, np.arange(n), 0))]
        tie = (rng.random(n) < tie_share) & (labels[order] != 0)
        tz[order[tie]] = tz[lead[tie]]

    momentum = particles.set_index("particle_id")[["px", "py", "pz"]]
    mom = momentum.reindex(labels).fillna(0.0).to_numpy()
    truth = pd.DataFrame({
        "hit_id": hits["hit_id"].to_numpy(),
        "particle_id": labels,
        "tx": hits["x"].to_numpy(), "ty": hits["y"].to_numpy(), "tz": tz,
        "tpx": mom[:, 0], "tpy": mom[:, 1], "tpz": mom[:, 2],
    })
    if missing_particles:
        pick = rng.choice(len(particles), missing_particles, replace=False)
        particles = particles.drop(index=particles.index[pick]).reset_index(drop=True)
    return truth, particles


def make_submission(truth: pd.DataFrame, seed: int, wrong: float = 0.05, split: float = 0.05,
                    merge: float = 0.02, noise_tracks: float = 0.5, unassigned: float = 0.02) -> pd.DataFrame:
    """The truth as tracks, then damaged: shares of hits moved to wrong tracks (`wrong`), of particles
    split in two tracks (`split`) and merged pairwise (`merge`), of noise hits grouped in noise tracks of
    about 5 (`noise_tracks`, the others join random tracks), and of hits left out (`unassigned`)."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    pid = truth["particle_id"].to_numpy()
    uniq, track = np.unique(pid, return_inverse=True)
    track = track.reshape(-1).astype(np.int64)
    n_tracks = uniq.size
    noise = pid == 0
    # noise: some in small noise tracks, the rest scattered into particle tracks
    grouped = noise & (rng.random(n) < noise_tracks)
    track[grouped] = n_tracks + rng.integers(0, max(1, int(grouped.sum()) // 5), int(grouped.sum()))
    scattered = noise & ~grouped
    track[scattered] = rng.integers(0, n_tracks, int(scattered.sum()))
    # split: the second half (in hit order) of chosen particles goes to a new track
    chosen = rng.random(n_tracks) < split
    order = np.argsort(track, kind="stable")
    start = np.ones(n, dtype=bool)
    start[1:] = track[order][1:] != track[order][:-1]
    rank = np.arange(n) - np.maximum.accumulate(np.where(start, np.arange(n), 0))
    size = np.bincount(track, minlength=track.max() + 1)[track[order]]
    move = chosen[np.minimum(track[order], n_tracks - 1)] & (track[order] < n_tracks) & (2 * rank >= size)
    track[order[move]] = track[order[move]] + 10 * n
    # merge: chosen tracks join the next chosen one
    ids = np.unique(track)
    joins = ids[rng.random(ids.size) < merge]
    if joins.size > 1:
        target = dict(zip(joins[1::2], joins[0::2], strict=False))
        mapped = pd.Series(track).map(target)
        track = np.where(mapped.notna(), mapped.fillna(0).to_numpy(dtype=np.int64), track)
    # wrong: a share of hits move to random tracks
    wrong_hits = rng.random(n) < wrong
    ids = np.unique(track)
    track[wrong_hits] = ids[rng.integers(0, ids.size, int(wrong_hits.sum()))]
    # renumber to small shuffled ids, drop the unassigned
    ids, code = np.unique(track, return_inverse=True)
    track = rng.permutation(ids.size)[code.reshape(-1)] + 1
    keep = rng.random(n) >= unassigned
    sub = pd.DataFrame({"hit_id": truth["hit_id"].to_numpy()[keep], "track_id": track[keep]})
    return sub.iloc[rng.permutation(len(sub))].reset_index(drop=True)


def best_of(fn, repeat: int) -> tuple[float, object]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=100_000, help="hits in the event (default 100000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs, the best is kept (default 5)")
    args = parser.parse_args(argv)

    from deepreco.metrics import add_weights, evaluate, hit_weights, score_event, tracking_metrics

    hits, particles, where = load_real()
    truth, particles = make_event(hits, particles, seed=args.seed, n_hits=args.hits)
    submission = make_submission(truth, seed=args.seed)
    truth_w = add_weights(truth, particles)

    print(f"command: python benchmarks/score.py --hits {args.hits} --seed {args.seed} --repeat {args.repeat}")
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; python {platform.python_version()}, numpy {np.__version__}, "
          f"pandas {pd.__version__}")
    print(f"data: {EVENT} hits and particles from the {where} copy; {len(hits)} real hits")
    print(f"event: {len(truth)} hits, {int((truth['particle_id'] != 0).sum())} from "
          f"{truth['particle_id'].nunique() - 1} particles, {int((truth['particle_id'] == 0).sum())} noise; "
          f"submission: {len(submission)} hits in {submission['track_id'].nunique()} tracks")
    print(f"timings: best of {args.repeat} (time.perf_counter)")
    t_w, _ = best_of(lambda: hit_weights(truth, particles), args.repeat)
    t_s, score = best_of(lambda: score_event(truth_w, submission), args.repeat)
    t_t, metrics = best_of(lambda: tracking_metrics(truth_w, particles, submission), args.repeat)
    t_e, _ = best_of(lambda: evaluate(truth, particles, submission), args.repeat)
    print(f"  hit_weights       {1e3 * t_w:8.1f} ms")
    print(f"  score_event       {1e3 * t_s:8.1f} ms")
    print(f"  tracking_metrics  {1e3 * t_t:8.1f} ms")
    print(f"  sum of the three  {1e3 * (t_w + t_s + t_t):8.1f} ms")
    print(f"  evaluate (weights + score + tracking, one matching) {1e3 * t_e:8.1f} ms")
    print(f"score: {score:.6f}")
    print("tracking: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                   for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

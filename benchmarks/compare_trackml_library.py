"""Compare deepreco.metrics with the TrackML challenge's own library on the same inputs.

Weights (``trackml.weights.weight_hits_phase1``), the per-track table (``trackml.score._analyze_tracks``)
and the score (``trackml.score.score_event``) are computed by both on synthetic events built from real
TrackML hits and particles (see ``score.py``), with different seeds and damage, and the largest absolute
differences are printed. The reference's weights need pandas < 3 (they fill a column in place), so run
this in a separate environment:

    python3 -m venv /tmp/tmlref && /tmp/tmlref/bin/pip install "pandas<3" numpy scipy matplotlib
    /tmp/tmlref/bin/pip install -e /work/main --no-deps
    mkdir -p /tmp/trackml-library && git --git-dir=PATH/TO/trackml-library/.git archive HEAD \\
        | tar -x -C /tmp/trackml-library
    /tmp/tmlref/bin/python benchmarks/compare_trackml_library.py --library /tmp/trackml-library

Exit status 1 when a difference is above --tolerance (1e-9) or the two disagree on raising.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from score import load_real, make_event, make_submission  # noqa: E402

CASES = [
    # name, event options, submission options, custom weights
    ("default damage", dict(seed=1), dict(), False),
    ("corner cases", dict(seed=2, long_particles=40, slow_particles=60, missing_particles=150,
                          dropped_share=0.05, tie_share=0.25),
     dict(wrong=0.2, split=0.2, merge=0.1, noise_tracks=0.9, unassigned=0.1), False),
    ("perfect submission (noise in noise tracks)", dict(seed=3, long_particles=10, tie_share=0.1),
     dict(wrong=0.0, split=0.0, merge=0.0, noise_tracks=1.0, unassigned=0.0), False),
    ("random tracks", dict(seed=4, tie_share=0.1), "random", False),
    ("hit pairs (majority ties)", dict(seed=5, long_particles=20), "pairs", False),
    ("random weights on every hit", dict(seed=6, tie_share=0.1),
     dict(wrong=0.1, split=0.1, merge=0.05, noise_tracks=1.0, unassigned=0.05), True),
    ("small event", dict(seed=7, n_hits=None, long_particles=5, tie_share=0.3),
     dict(wrong=0.3, split=0.3, merge=0.2, noise_tracks=0.5, unassigned=0.3), False),
]


def special_submission(truth: pd.DataFrame, kind: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(truth)
    if kind == "random":
        track = rng.integers(1, n // 8, n)
    else:  # pairs of random hits: many one-one ties, noise wins ties with noise
        track = rng.permutation(n) // 2 + 1
    sub = pd.DataFrame({"hit_id": truth["hit_id"].to_numpy(), "track_id": track})
    return sub[rng.random(n) >= 0.03].reset_index(drop=True)


def coverage(ours_tracks: pd.DataFrame, truth: pd.DataFrame, particles: pd.DataFrame,
             submission: pd.DataFrame) -> str:
    t = ours_tracks
    assigned = t["track_id"].notna()
    pairs = submission.merge(truth[["hit_id", "particle_id"]], on="hit_id")
    counts = pairs.groupby(["track_id", "particle_id"]).size().rename("n").reset_index()
    top = counts.groupby("track_id")["n"].transform("max")
    ties = int(counts[counts["n"] == top].groupby("track_id").size().gt(1).sum())
    noise_major = int(((t["major_particle_id"] == 0) & assigned).sum())
    loose = int((~assigned).sum())
    table = particles.set_index("particle_id")
    long_hits = int(truth["particle_id"].map(table["nhits"]).gt(20).sum())
    slow_hits = int(truth["particle_id"].map(np.hypot(table["px"], table["py"])).lt(0.05).sum())
    unknown = int((~truth["particle_id"].isin(table.index) & truth["particle_id"].ne(0)).sum())
    dvz = (truth["tz"] - truth["particle_id"].map(table["vz"])).abs()
    tied = int(pd.DataFrame({"p": truth["particle_id"], "d": dvz}).dropna().duplicated().sum())
    return (f"{int(assigned.sum())} tracks, {ties} with a tied majority, {noise_major} noise-majority, "
            f"{loose} unassigned hits; hits: {long_hits} on particles with nhits > 20, {slow_hits} with "
            f"pT < 0.05 GeV, {unknown} of particles missing from the table, {tied} with a tied |tz - vz|")


def sort_tracks(table: pd.DataFrame) -> pd.DataFrame:
    keys = ["track_id", "major_particle_id", "nhits", "major_weight"]
    return table.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", required=True, help="checkout of the trackml-library repository")
    parser.add_argument("--hits", type=int, default=100_000)
    parser.add_argument("--tolerance", type=float, default=1e-9)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(args.library).resolve()))
    from trackml.score import _analyze_tracks as ref_analyze
    from trackml.score import score_event as ref_score
    from trackml.weights import weight_hits_phase1 as ref_weights

    from deepreco.errors import EventError
    from deepreco.metrics import analyze_tracks, hit_weights, score_event

    print(f"reference: {Path(args.library).resolve()} (trackml.weights.weight_hits_phase1, trackml.score)")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}")
    hits, particles0, where = load_real()
    print(f"data: event000001001 hits and particles ({where} copy)")
    worst = {"weights": 0.0, "score": 0.0, "score (crossed weights)": 0.0, "major_weight": 0.0}
    failures = 0
    for i, (name, event_opts, sub_opts, custom) in enumerate(CASES):
        opts = dict(event_opts)
        n_hits = opts.pop("n_hits", args.hits)
        seed = opts.pop("seed")
        ev_hits = hits if n_hits is not None else hits.iloc[:5000]
        truth, particles = make_event(ev_hits, particles0, seed=seed, n_hits=n_hits, **opts)
        # truth rows in a shuffled order: the weights must follow the rows, not the hit ids
        truth = truth.iloc[np.random.default_rng(seed).permutation(len(truth))].reset_index(drop=True)
        if isinstance(sub_opts, str):
            submission = special_submission(truth, sub_opts, seed)
        else:
            submission = make_submission(truth, seed=seed, **sub_opts)

        t0 = time.perf_counter()
        chatter = io.StringIO()
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ref_w = ref_weights(truth, particles)["weight"].to_numpy()
        t_ref_w = time.perf_counter() - t0
        n_warn = chatter.getvalue().count("warning long true track")
        n_future = sum(issubclass(w.category, FutureWarning) for w in caught)
        t0 = time.perf_counter()
        our_w = hit_weights(truth, particles)
        t_our_w = time.perf_counter() - t0
        if custom:
            rng = np.random.default_rng(seed)
            ref_w = our_w = rng.random(len(truth))
        d_w = float(np.max(np.abs(ref_w - our_w)))

        truth_ref = truth.assign(weight=ref_w)
        truth_our = truth.assign(weight=our_w)
        t0 = time.perf_counter()
        s_ref = float(ref_score(truth_ref, submission))
        t_ref_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        s_our = score_event(truth_our, submission)
        t_our_s = time.perf_counter() - t0
        d_s = abs(s_ref - s_our)
        d_x = max(abs(float(ref_score(truth_our, submission)) - s_our),
                  abs(score_event(truth_ref, submission) - s_ref))

        ours_t = analyze_tracks(truth_ref, submission)
        ref_t = sort_tracks(ref_analyze(truth_ref, submission))
        ours_s = sort_tracks(ours_t)
        int_cols = ["nhits", "major_particle_id", "major_particle_nhits", "major_nhits"]
        same_shape = ref_t.shape == ours_s.shape
        mismatch = (int(((ref_t[int_cols].to_numpy() != ours_s[int_cols].to_numpy()).any(axis=1)).sum()
                        + (ref_t["track_id"].fillna(-1).to_numpy() != ours_s["track_id"].fillna(-1)
                           .to_numpy()).sum()) if same_shape else -1)
        d_mw = float(np.max(np.abs(ref_t["major_weight"].to_numpy() - ours_s["major_weight"].to_numpy()))) \
            if same_shape else float("inf")

        print(f"\n[{i + 1}] {name}: seed {seed}, {len(truth)} hits, {int((truth['particle_id'] != 0).sum())} "
              f"on {truth['particle_id'].nunique() - 1} particles; submission {len(submission)} hits")
        print(f"    covers: {coverage(ours_t, truth, particles, submission)}; reference printed {n_warn} "
              f"'long true track' warnings and raised {n_future} FutureWarnings (in-place fillna)")
        print(f"    weights: max |diff| {d_w:.3e}{' (random weights used for the score)' if custom else ''}"
              f"; sum ours {our_w.sum():.15f}; time ref {t_ref_w:.2f} s, ours {1e3 * t_our_w:.1f} ms")
        print(f"    score: reference {s_ref:.15f}, ours {s_our:.15f}, |diff| {d_s:.3e}; with the other's "
              f"weights {d_x:.3e}; time ref {t_ref_s:.2f} s, ours {1e3 * t_our_s:.1f} ms")
        print(f"    track table: {len(ref_t)} rows vs {len(ours_s)}, {mismatch} rows differing in ids or "
              f"counts, major_weight max |diff| {d_mw:.3e}")
        worst["weights"] = max(worst["weights"], d_w)
        worst["score"] = max(worst["score"], d_s)
        worst["score (crossed weights)"] = max(worst["score (crossed weights)"], d_x)
        worst["major_weight"] = max(worst["major_weight"], d_mw)
        failures += mismatch != 0

    # both must refuse a particles table whose nhits is below the truth count of a particle
    truth, particles = make_event(hits, particles0, seed=8)
    pid = truth["particle_id"].value_counts().drop(0, errors="ignore").index[0]  # one with the most hits
    particles.loc[particles["particle_id"] == pid, "nhits"] = 4
    raised = []
    for fn in (ref_weights, hit_weights):
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                fn(truth, particles)
            raised.append("no error")
        except EventError as err:
            raised.append(f"EventError: {err}")
        except Exception as err:  # the reference raises a bare Exception
            raised.append(f"{type(err).__name__}: {err}")
    agree = all(r != "no error" for r in raised)
    print(f"\n[{len(CASES) + 1}] particle {pid} with table nhits 4 below its truth count: "
          f"reference -> {raised[0]}; ours -> {raised[1]}; both raise: {agree}")
    failures += not agree

    print("\nmax absolute differences over all cases:")
    for key, value in worst.items():
        print(f"    {key:24s} {value:.3e}")
    ok = failures == 0 and all(v <= args.tolerance for v in worst.values())
    print(f"{'PASS' if ok else 'FAIL'}: every difference <= {args.tolerance:g}, track tables identical in "
          "ids and counts, both raise on the inconsistent table")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

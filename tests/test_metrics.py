"""Tests of deepreco.metrics on small hand-made events whose values are worked out by hand in comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepreco.errors import EventError, SubmissionError
from deepreco.metrics import (
    add_weights,
    analyze_tracks,
    check_submission,
    efficiency_table,
    evaluate,
    hit_weights,
    order_weight_matrix,
    plot_efficiencies,
    plot_efficiency,
    score_event,
    tracking_metrics,
    weight_pt,
)

# ---------------------------------------------------------------------------------------------------------
# helpers


def make_truth(particle_ids, weights=None, tz=None) -> pd.DataFrame:
    """Truth with hit_id 1..n; weights default to 1 for particle hits and 0 for noise."""
    pid = np.asarray(particle_ids, dtype=np.int64)
    n = pid.size
    if weights is None:
        weights = (pid != 0).astype(float)
    return pd.DataFrame({
        "hit_id": np.arange(1, n + 1, dtype=np.int64),
        "particle_id": pid,
        "tx": np.zeros(n), "ty": np.zeros(n),
        "tz": np.arange(n, dtype=float) if tz is None else np.asarray(tz, dtype=float),
        "tpx": np.zeros(n), "tpy": np.zeros(n), "tpz": np.zeros(n),
        "weight": np.asarray(weights, dtype=float),
    })


def make_submission(track_ids, hit_ids=None) -> pd.DataFrame:
    track_ids = np.asarray(track_ids, dtype=np.int64)
    if hit_ids is None:
        hit_ids = np.arange(1, track_ids.size + 1)
    return pd.DataFrame({"hit_id": np.asarray(hit_ids, dtype=np.int64), "track_id": track_ids})


def approx(value):
    return pytest.approx(value, abs=1e-12)


# A 10-hit event: particle 1 (hits 1-4, weight 0.15 each), particle 2 (hits 5-8, 0.1 each), noise (9, 10).
TEN = make_truth([1, 1, 1, 1, 2, 2, 2, 2, 0, 0], weights=[0.15] * 4 + [0.1] * 4 + [0.0, 0.0])


# ---------------------------------------------------------------------------------------------------------
# score


def test_perfect_submission_scores_one():
    # track 1 = particle 1 (0.6), track 2 = particle 2 (0.4), track 3 = the noise (weight 0): 0.6 + 0.4 = 1
    sub = make_submission([1, 1, 1, 1, 2, 2, 2, 2, 3, 3])
    assert score_event(TEN, sub) == approx(1.0)


def test_all_hits_in_one_track():
    # one 10-hit track: particles 1 and 2 tie at 4 hits -> majority 1 (smaller id); 4/10 is not > 1/2 -> 0
    sub = make_submission([7] * 10)
    assert score_event(TEN, sub) == approx(0.0)
    tracks = analyze_tracks(TEN, sub)
    assert tracks.to_dict("records") == [{
        "track_id": 7, "nhits": 10, "major_particle_id": 1, "major_particle_nhits": 4, "major_nhits": 4,
        "major_weight": approx(0.6),
    }]


def test_random_assignment_scores_near_zero():
    # 100 particles of 10 hits spread at random over 100 tracks: a track holds ~1 hit of a particle, far from
    # the 6 of 10 needed
    rng = np.random.default_rng(0)
    truth = make_truth(np.repeat(np.arange(1, 101), 10))
    sub = make_submission(rng.integers(1, 101, truth.shape[0]))
    assert score_event(truth, sub) < 0.01


def test_split_track_halves_score_nothing():
    # a 6-hit particle split 3 + 3: each half holds 3/6 of the particle, not more than half -> 0
    truth = make_truth([5] * 6, weights=[0.1, 0.2, 0.3, 0.1, 0.2, 0.1])
    assert score_event(truth, make_submission([1, 1, 1, 2, 2, 2])) == approx(0.0)


def test_split_track_four_two_keeps_the_four():
    # split 4 + 2: the 4-hit track holds 4/6 > 1/2 of the particle and is pure -> its hits' weight
    # (0.1 + 0.2 + 0.3 + 0.1) / 1.0 = 0.7; the 2-hit track holds 2/6 -> 0
    truth = make_truth([5] * 6, weights=[0.1, 0.2, 0.3, 0.1, 0.2, 0.1])
    assert score_event(truth, make_submission([1, 1, 1, 1, 2, 2])) == approx(0.7)


def test_merged_tracks_keep_the_majority_particle():
    # particle 1 (6 hits, 0.1 each) and particle 2 (3 hits, 0.1 each) merged in one 9-hit track:
    # particle 1 has 6/9 > 1/2 of the track and 6/6 of its hits -> 0.6 / 0.9; particle 2 is lost
    truth = make_truth([1] * 6 + [2] * 3, weights=[0.1] * 9)
    assert score_event(truth, make_submission([3] * 9)) == approx(0.6 / 0.9)


def test_noise_only_tracks():
    # the noise track of TEN is good (2/2 of the track, 2/2 of "particle" 0) but weighs 0: perfect still 1.0
    tracks = analyze_tracks(TEN, make_submission([1, 1, 1, 1, 2, 2, 2, 2, 3, 3]))
    noise = tracks[tracks["track_id"] == 3].iloc[0]
    assert (noise["major_particle_id"], noise["major_nhits"], noise["major_particle_nhits"]) == (0, 2, 2)
    # with a weight on noise hits (as the reference allows), a noise-majority track counts like any other:
    # noise hits 9, 10 weigh 0.5 each, total 0.6 + 0.4 + 1.0 = 2.0; a track of both noise hits and hit 1
    # has noise 2/3 > 1/2 and 2/2 noise hits -> 1.0; particle 1 keeps 3/4 of its hits in track 1 -> 0.45;
    # particle 2 -> 0.4. Score (1.0 + 0.45 + 0.4) / 2.0 = 0.925
    truth = TEN.assign(weight=[0.15] * 4 + [0.1] * 4 + [0.5, 0.5])
    sub = make_submission([9, 1, 1, 1, 2, 2, 2, 2, 9, 9])
    assert score_event(truth, sub) == approx(0.925)


def test_majority_tie_goes_to_the_smaller_particle_id():
    # track 1: 2 hits of particle 7 and 2 of particle 3 -> majority 3; track 2: 2 noise hits and 2 hits of
    # particle 5 -> majority 0 (noise has the smallest id)
    truth = make_truth([7, 7, 3, 3, 0, 0, 5, 5], weights=[0.125] * 8)
    tracks = analyze_tracks(truth, make_submission([1, 1, 1, 1, 2, 2, 2, 2]))
    assert tracks["major_particle_id"].tolist() == [3, 0]
    assert tracks["major_nhits"].tolist() == [2, 2]
    assert tracks["major_weight"].tolist() == [approx(0.25), approx(0.25)]


def test_unassigned_hits_are_one_hit_tracks():
    # hit 4 of particle 1 is left out: track 1 holds 3/3 hits of particle 1, 3/4 of its hits -> 0.45;
    # hit 4 alone is 1/4 of particle 1 -> 0. Particle 9 has 1 truth hit (weight 0.2) and is left out: its
    # one-hit "track" holds 1/1 of it -> counts, as in the reference. (0.45 + 0.4 + 0.2) / 1.2 = 0.875
    truth = make_truth([1, 1, 1, 1, 2, 2, 2, 2, 9], weights=[0.15] * 4 + [0.1] * 4 + [0.2])
    sub = make_submission([1, 1, 1, 2, 2, 2, 2], hit_ids=[1, 2, 3, 5, 6, 7, 8])
    assert score_event(truth, sub) == approx(0.875)
    tracks = analyze_tracks(truth, sub)
    assert tracks["track_id"].tolist()[:2] == [1.0, 2.0]
    assert tracks["track_id"].iloc[2:].isna().all()
    assert tracks["nhits"].tolist() == [3, 4, 1, 1]
    assert tracks["major_particle_id"].tolist() == [1, 2, 1, 9]


def test_not_validated_ignores_unknown_hits_and_nan_tracks():
    # hit 99 is not in the event and hit 4 has a NaN track: without validation, as in the reference, 99 is
    # ignored and hit 4 is unassigned -> same as the previous test's particle 1 and 2 part: 0.85 / 1.0
    sub = pd.DataFrame({"hit_id": [1, 2, 3, 4, 5, 6, 7, 8, 99],
                        "track_id": [1, 1, 1, np.nan, 2, 2, 2, 2, 3]})
    assert score_event(TEN, sub, validate=False) == approx(0.85)
    with pytest.raises(SubmissionError, match="'track_id' has 1 NaN value"):
        score_event(TEN, sub)
    with pytest.raises(SubmissionError, match="1 hit_id not in the event, e.g. hit_id 99"):
        score_event(TEN, sub.fillna(4))


def test_empty_event_scores_zero():
    truth = make_truth([])
    sub = make_submission([])
    assert score_event(truth, sub) == 0.0
    tracks = analyze_tracks(truth, sub)
    assert len(tracks) == 0
    assert list(tracks.columns) == ["track_id", "nhits", "major_particle_id", "major_particle_nhits",
                                    "major_nhits", "major_weight"]


def test_zero_total_weight_scores_zero():
    truth = TEN.assign(weight=0.0)
    assert score_event(truth, make_submission([1, 1, 1, 1, 2, 2, 2, 2, 3, 3])) == 0.0


def test_score_rejects_nan_weights():
    truth = TEN.assign(weight=[np.nan] + [0.1] * 9)
    with pytest.raises(EventError, match="weight"):
        score_event(truth, make_submission([1] * 10))


# ---------------------------------------------------------------------------------------------------------
# weights


@pytest.mark.parametrize(("pt", "expected"), [
    (0.01, 0.0),   # below 0.05 GeV: 0
    (0.05, 0.2),   # from 0.05 GeV: the floor 0.2
    (0.3, 0.2),
    (0.5, 0.2),
    (1.75, 0.6),   # halfway from 0.5 to 3 GeV: 0.2 + 0.8 / 2
    (3.0, 1.0),
    (10.0, 1.0),   # above 3 GeV: 1
])
def test_weight_pt(pt, expected):
    assert weight_pt(pt) == approx(expected)
    assert weight_pt(np.array([pt]))[0] == approx(expected)


def test_order_weight_matrix_by_hand():
    m = order_weight_matrix()
    assert m.shape == (21, 20)
    # 4 hits: the 9 proposal values (10 8 6 5 3 3 3 5 6) sit at 0, 3/8, 6/8, ... 3; at hit 0: 10, hit 1
    # (between 6 at 0.75 and 5 at 1.125): 6 - 2/3 = 16/3, hit 2: 3, hit 3: 6; sum 73/3
    assert m[4, :4].tolist() == [approx(30 / 73), approx(16 / 73), approx(9 / 73), approx(18 / 73)]
    assert m[4, 4:].tolist() == [0.0] * 16
    # 20 hits: knots every 19/8 = 2.375 hits; the 20 interpolated values sum to 2005/19;
    # hit 0: 10 -> 190/2005, hit 10: 3 -> 57/2005, hit 19: 6 -> 114/2005
    assert m[20, 0] == approx(190 / 2005)
    assert m[20, 10] == approx(57 / 2005)
    assert m[20, 19] == approx(114 / 2005)
    assert m[:4].sum() == 0.0
    assert m[4:].sum(axis=1).tolist() == [approx(1.0)] * 17


def weight_event():
    """Particle 1: 4 hits, pT 1.75 (0.6); particle 2: 25 hits, pT 10 (1.0); particle 3: 3 hits; particle 4
    not in the particles table (2 hits); noise (2 hits). All vertices at z = 0 except particle 2 (z = -5)."""
    pid = [1] * 4 + [2] * 25 + [3] * 3 + [4] * 2 + [0] * 2
    tz = [-40.0, 10.0, 20.0, 30.0] + list(range(25)) + [1.0, 2.0, 3.0] + [1.0, 2.0] + [1.0, 2.0]
    truth = make_truth(pid, tz=tz).drop(columns="weight")
    particles = pd.DataFrame({
        "particle_id": [1, 2, 3],
        "vx": [0.0] * 3, "vy": [0.0] * 3, "vz": [0.0, -5.0, 0.0],
        "px": [1.75, 6.0, 2.0], "py": [0.0, 8.0, 0.0], "pz": [1.0, 1.0, 1.0],
        "q": [1, -1, 1], "nhits": [4, 25, 3],
    })
    return truth, particles


def test_hit_weights_by_hand():
    truth, particles = weight_event()
    w = hit_weights(truth, particles)
    assert w.dtype == np.float64 and w.shape == (len(truth),)
    m = order_weight_matrix()
    # unnormalised: particle 1 sums to 0.6 (rows of the matrix sum to 1), particle 2 to 1.0 (its first 20
    # hits; hits 20-24 weigh 0), the rest 0 -> total 1.6
    # particle 1: |tz - vz| = 40, 10, 20, 30 -> hit indices 3, 0, 1, 2
    assert w[:4].tolist() == [approx(0.6 * m[4, i] / 1.6) for i in (3, 0, 1, 2)]
    # particle 2: |tz + 5| = 5 .. 29 in order -> indices 0 .. 24; nhits 25 is treated as 20
    assert w[4:24].tolist() == [approx(m[20, i] / 1.6) for i in range(20)]
    assert w[24:29].tolist() == [0.0] * 5
    # particle 3 (3 hits), particle 4 (not in the table) and noise weigh 0
    assert w[29:].tolist() == [0.0] * 7
    assert w.sum() == approx(1.0)


def test_hit_weights_tied_distances_share_the_mean_rank():
    # |tz - vz| = 10, 20, 20, 30: ranks 1, 2.5, 2.5, 4 -> minus 1 and truncated: 0, 1, 1, 3
    # weights 30, 16, 16, 18 (/73), normalised by their sum 80/73 -> 30/80, 16/80, 16/80, 18/80
    truth = make_truth([1] * 4, tz=[10.0, 20.0, 20.0, 30.0])
    particles = pd.DataFrame({"particle_id": [1], "vz": [0.0], "px": [5.0], "py": [0.0], "nhits": [4]})
    assert hit_weights(truth, particles).tolist() == [approx(30 / 80), approx(16 / 80), approx(16 / 80),
                                                      approx(18 / 80)]


def test_hit_weights_few_hits_and_zero_total():
    # every particle below 4 hits: all weights 0 (the reference would give 0/0 = NaN)
    truth = make_truth([1, 1, 1, 2, 2])
    particles = pd.DataFrame({"particle_id": [1, 2], "vz": [0.0, 0.0], "px": [5.0, 5.0], "py": [0.0, 0.0],
                              "nhits": [3, 2]})
    assert hit_weights(truth, particles).tolist() == [0.0] * 5


def test_hit_weights_use_the_table_nhits():
    # 3 truth hits but nhits 4 in the table: weighted as hits 0, 1, 2 of a 4-hit particle
    # -> 30, 16, 9 (/73), normalised by 55/73
    truth = make_truth([1, 1, 1], tz=[1.0, 2.0, 3.0])
    particles = pd.DataFrame({"particle_id": [1], "vz": [0.0], "px": [5.0], "py": [0.0], "nhits": [4]})
    assert hit_weights(truth, particles).tolist() == [approx(30 / 55), approx(16 / 55), approx(9 / 55)]
    # 5 truth hits but nhits 4: hit index 4 >= nhits is an error (the reference raises too)
    truth = make_truth([1] * 5)
    with pytest.raises(EventError, match="order index"):
        hit_weights(truth, particles)


def test_hit_weights_nan_pt_weighs_zero_and_errors():
    truth, particles = weight_event()
    particles.loc[0, "px"] = np.nan
    w = hit_weights(truth, particles)
    assert w[:4].tolist() == [0.0] * 4 and w.sum() == approx(1.0)
    with pytest.raises(EventError, match="missing column 'nhits'"):
        hit_weights(truth, particles.drop(columns="nhits"))
    with pytest.raises(EventError, match="particle_id"):
        hit_weights(truth, pd.concat([particles, particles.iloc[:1]]))


def test_add_weights_returns_a_copy():
    truth, particles = weight_event()
    out = add_weights(truth, particles)
    assert "weight" not in truth.columns
    assert out["weight"].to_numpy().tolist() == hit_weights(truth, particles).tolist()
    assert list(out.columns[:-1]) == list(truth.columns)


# ---------------------------------------------------------------------------------------------------------
# check_submission


def test_check_submission_accepts_partial_submissions():
    check_submission(make_submission([1, 1, 2], hit_ids=[1, 2, 5]), TEN["hit_id"])
    check_submission(make_submission([1, 1, 2], hit_ids=[1, 2, 5]), TEN)


def test_check_submission_errors():
    hits = TEN["hit_id"]
    with pytest.raises(SubmissionError, match=r"2 hit_ids not in the event, e\.g\. hit_id 11"):
        check_submission(make_submission([1, 1, 2], hit_ids=[1, 11, 12]), hits)
    dup = r"1 hit listed more than once, e\.g\. hit_id 2 \(track_ids 1, 3"
    with pytest.raises(SubmissionError, match=dup):
        check_submission(make_submission([1, 1, 3], hit_ids=[1, 2, 2]), hits)
    with pytest.raises(SubmissionError, match="missing column 'track_id'"):
        check_submission(pd.DataFrame({"hit_id": [1]}), hits)
    with pytest.raises(SubmissionError, match="'track_id' has 1 NaN value"):
        check_submission(pd.DataFrame({"hit_id": [1, 2], "track_id": [1.0, np.nan]}), hits)
    with pytest.raises(SubmissionError, match="non-integer"):
        check_submission(pd.DataFrame({"hit_id": [1, 2], "track_id": [1.0, 1.5]}), hits)
    with pytest.raises(SubmissionError, match="must hold integers"):
        check_submission(pd.DataFrame({"hit_id": [1, 2], "track_id": ["a", "b"]}), hits)
    # the reference scorer loses track -1 (0.6 instead of 1.0 here): negative track ids are refused
    with pytest.raises(SubmissionError, match="4 negative track_ids, e.g. -1"):
        check_submission(make_submission([-1, -1, -1, -1, 5, 5, 5, 5]), hits)
    with pytest.raises(SubmissionError, match="^tracks.csv: "):
        check_submission(pd.DataFrame({"hit_id": [1]}), hits, source="tracks.csv")


def test_submission_dtypes_and_duplicated_event_ids():
    # integer-valued floats and nullable integers are fine as ids
    sub = pd.DataFrame({"hit_id": pd.array([1, 2, 3, 4], dtype="Int64"), "track_id": [1.0, 1.0, 1.0, 1.0]})
    # particle 1 complete in one track (0.6 of 1.0)
    assert score_event(TEN, sub) == approx(0.6)
    with pytest.raises(EventError, match="truth: 1 hit_id listed more than once, e.g. hit_id 1"):
        score_event(pd.concat([TEN, TEN.iloc[:1]]), sub)
    # sparse ids (TrackML-like particle ids) take the sorted path
    truth, particles = weight_event()
    big = 4503668346847232
    truth["particle_id"] = truth["particle_id"].where(truth["particle_id"] == 0, truth["particle_id"] + big)
    particles["particle_id"] += big
    assert hit_weights(truth, particles).tolist() == hit_weights(*weight_event()).tolist()
    with pytest.raises(EventError, match=f"particles: 1 particle_id listed more than once, .* {big + 1}$"):
        hit_weights(truth, pd.concat([particles, particles.iloc[:1]]))


def test_score_refuses_a_hit_in_two_tracks():
    with pytest.raises(SubmissionError, match="more than once"):
        score_event(TEN, make_submission([1, 2], hit_ids=[3, 3]), validate=False)


# ---------------------------------------------------------------------------------------------------------
# tracking metrics


def tracking_event():
    """Particles 1 (5 hits), 2 (4), 3 (6), 4 (4, pT 0.5), 5 (3), 6 (4) and 7 noise hits; see the tests."""
    pid = ([1] * 5 + [2] * 4 + [3] * 6 + [4] * 4 + [5] * 3 + [6] * 4 + [0] * 7)
    truth = make_truth(pid)
    particles = pd.DataFrame({
        "particle_id": [1, 2, 3, 4, 5, 6],
        "vx": 0.0, "vy": 0.0, "vz": 0.0,
        "px": [2.0, 2.0, 2.0, 0.5, 2.0, 2.0], "py": 0.0,
        "pz": [0.0, 0.0, 2.0, 0.0, 0.0, -2.0],
        "q": 1, "nhits": [5, 4, 6, 4, 3, 4],
    })
    h = {p: list(truth.index[truth["particle_id"] == p] + 1) for p in range(7)}
    tracks = {
        1: h[1],                         # P1 exactly: associated, double-majority and perfect match
        2: h[2][:3] + h[0][:1],          # 3 of P2 + noise: associated; 3/4 of P2 -> double-majority
        3: h[3][:3] + h[0][1:2],         # 3 of P3 + noise: associated, 3/6 of P3 -> no match
        4: h[3][3:] + h[0][2:3],         # the other 3 of P3 + noise: associated -> T3, T4 duplicates
        5: h[4],                         # P4 exactly (pT 0.5: not selected by default)
        6: h[5],                         # P5, 3 hits: too short to count as a track
        7: h[2][3:] + h[0][3:4] + h[6][:2],  # 1 + 1 + 2 of P6: no majority -> fake
        8: h[0][4:7] + h[6][2:3],        # 3 noise + 1 of P6: noise majority -> fake
    }                                    # hit 4 of P6 is left out
    rows = [(hit, t) for t, hits in tracks.items() for hit in hits]
    sub = pd.DataFrame(rows, columns=["hit_id", "track_id"])
    return truth, particles, sub


def test_tracking_metrics_by_hand():
    truth, particles, sub = tracking_event()
    # tracks of >= 4 hits: T1 T2 T3 T4 T5 T7 T8 = 7; associated T1 T2 T3 T4 T5; fakes T7 T8 -> 2/7;
    # duplicates T3 T4 (both P3) -> 2/7. Selected (pT > 1, >= 4 hits): P1 P2 P3 P6 = 4; double-majority
    # matched: P1 (T1), P2 (T2) -> 2/4; perfect: P1 -> 1/4
    assert tracking_metrics(truth, particles, sub) == {
        "efficiency": approx(0.5), "efficiency_perfect": approx(0.25), "fake_rate": approx(2 / 7),
        "duplicate_rate": approx(2 / 7), "n_tracks": 7, "n_particles": 4,
    }
    # tracks from 3 hits: T6 (P5, perfect) joins -> 8 tracks; pT > 0.4 selects P4 too: P1 P2 P3 P4 P6 = 5
    # (P5 still has 3 < 4 hits); double-majority P1 P2 P4 -> 3/5, perfect P1 P4 -> 2/5
    assert tracking_metrics(truth, particles, sub, pt_min=0.4, min_track_hits=3) == {
        "efficiency": approx(0.6), "efficiency_perfect": approx(0.4), "fake_rate": approx(2 / 8),
        "duplicate_rate": approx(2 / 8), "n_tracks": 8, "n_particles": 5,
    }
    # min_hits 3 and pT > 0.4: P5 selected and matched by T6 (now counted) -> 4/6 and 3/6
    got = tracking_metrics(truth, particles, sub, pt_min=0.4, min_hits=3, min_track_hits=3)
    assert got["efficiency"] == approx(4 / 6)
    assert (got["efficiency_perfect"], got["n_particles"]) == (approx(0.5), 6)


def test_tracking_metrics_empty_inputs():
    truth, particles, sub = tracking_event()
    # no tracks: rates 0.0, efficiency 0 of 4
    got = tracking_metrics(truth, particles, sub.iloc[:0])
    assert got == {"efficiency": 0.0, "efficiency_perfect": 0.0, "fake_rate": 0.0, "duplicate_rate": 0.0,
                   "n_tracks": 0, "n_particles": 4}
    # no selected particles: efficiency 0.0
    got = tracking_metrics(truth, particles, sub, pt_min=100.0)
    assert got["n_particles"] == 0 and got["efficiency"] == 0.0 and got["efficiency_perfect"] == 0.0
    empty = make_truth([])
    got = tracking_metrics(empty, particles.iloc[:0], make_submission([]))
    assert got == {"efficiency": 0.0, "efficiency_perfect": 0.0, "fake_rate": 0.0, "duplicate_rate": 0.0,
                   "n_tracks": 0, "n_particles": 0}


def test_evaluate_computes_missing_weights():
    truth, particles, sub = tracking_event()
    bare = truth.drop(columns="weight")
    got = evaluate(bare, particles, sub)
    assert set(got) == {"score", "efficiency", "efficiency_perfect", "fake_rate", "duplicate_rate",
                        "n_tracks", "n_particles"}
    assert got["score"] == approx(score_event(add_weights(bare, particles), sub))
    assert got["efficiency"] == approx(0.5)
    # a usable weight column is kept: every particle hit weighs 1 here
    assert evaluate(truth, particles, sub)["score"] == approx(score_event(truth, sub))


# ---------------------------------------------------------------------------------------------------------
# efficiency table and plots


def test_efficiency_table_counts():
    truth, particles, sub = tracking_event()
    # vs pT, no pT cut: P4 (0.5 GeV) in [0.1, 1), matched by T5; P1 P2 P3 P6 (2 GeV) in [1, 10], P1 P2 matched
    table = efficiency_table(truth, particles, sub, var="pt", bins=[0.1, 1.0, 10.0])
    assert table["n_particles"].tolist() == [1, 4]
    assert table["n_matched"].tolist() == [1, 2]
    assert table["efficiency"].tolist() == [approx(1.0), approx(0.5)]
    # Clopper-Pearson 68.27 %: for 1 of 1 the interval is [0.1587, 1] (alpha / 2 = 0.15866)
    assert table["lower"].iloc[0] == pytest.approx(0.15865525393145707, abs=1e-9)
    assert table["upper"].iloc[0] == 1.0
    assert table["lower"].iloc[1] < 0.5 < table["upper"].iloc[1]
    # perfect matching: P4 and P1
    perfect = efficiency_table(truth, particles, sub, var="pt", bins=[0.1, 1.0, 10.0], matching="perfect")
    assert perfect["n_matched"].tolist() == [1, 1]
    # vs eta (pT > 1 by default): eta = asinh(pz / pT): P3 asinh(1) = 0.88, P6 -0.88, P1 P2 0
    eta = efficiency_table(truth, particles, sub, var="eta", bins=[-2.0, -0.5, 0.5, 2.0])
    assert eta["n_particles"].tolist() == [1, 2, 1]
    assert eta["n_matched"].tolist() == [0, 2, 0]
    # default bins; an empty bin has a NaN efficiency
    default = efficiency_table(truth, particles, sub)
    assert default["low"].iloc[0] == approx(0.1) and default["high"].iloc[-1] == approx(100.0)
    assert default["n_particles"].sum() == 5
    assert default["efficiency"].isna().sum() == (default["n_particles"] == 0).sum()
    with pytest.raises(ValueError, match="var"):
        efficiency_table(truth, particles, sub, var="phi")


def test_plots_write_png(tmp_path):
    truth, particles, sub = tracking_event()
    path = plot_efficiencies(truth, particles, sub, tmp_path / "eff.png")
    assert path == tmp_path / "eff.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["eff.png"]
    ax = plot_efficiency(efficiency_table(truth, particles, sub, var="pt"), label="test")
    assert ax.get_xscale() == "log"

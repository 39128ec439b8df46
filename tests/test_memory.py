"""Memory in bounds (issue 21): the structures that grew with the square of the hits are made in blocks.

The window pairs of the ckf (`grid_pair_blocks`, seeding and the filter's search) are candidates x hits per
window; a consumer that cuts each block keeps its memory near linear. Measured with tracemalloc (NumPy's
allocations are traced), on sizes small enough for seconds.
"""

import tracemalloc

import numpy as np
import pytest

from deepreco.reconstruct.ckf import CKFTracks, kalman, seeding
from deepreco.reconstruct.ckf.geometry import layers, prepare_hits
from deepreco.reconstruct.ckf.seeding import Grid, find_seeds, grid_pair_blocks


def _uniform(n: int, seed: int, hits: bool = False):
    """A `Grid` of ``n`` hits and ``n`` queries, uniform in phi and in a coordinate over [0, 100) (and the hits'
    phi and coordinate with ``hits``)."""
    rng = np.random.default_rng(seed)
    hit_phi, hit_coord = rng.uniform(-np.pi, np.pi, n), rng.uniform(0.0, 100.0, n)
    phi, coord = rng.uniform(-np.pi, np.pi, n), rng.uniform(0.0, 100.0, n)
    out = Grid(hit_phi, hit_coord, np.arange(n), 10.0), phi, coord
    return (*out, hit_phi, hit_coord) if hits else out


def _pairs(grid, phi, coord, half, span, block=None):
    blocks = list(grid_pair_blocks(phi, np.full(len(phi), half), coord - span, coord + span, grid, block))
    return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])


def test_window_pairs_are_every_pair_in_the_window_whatever_the_block():
    grid, phi, coord, hit_phi, hit_coord = _uniform(300, seed=1, hits=True)
    q, h = _pairs(grid, phi, coord, 0.3, 15.0)
    # brute force over all pairs; the wrap in phi included (three copies in the grid: each pair found once)
    dphi = np.abs((phi[:, None] - hit_phi[None, :] + np.pi) % (2 * np.pi) - np.pi)
    inside = (dphi <= 0.3 + 1e-12) & (np.abs(coord[:, None] - hit_coord[None, :]) <= 15.0)
    assert sorted(zip(q.tolist(), h.tolist(), strict=True)) == sorted(zip(*map(list, np.nonzero(inside)), strict=True))
    for block in (1, 7, 1000):  # blocks of any size: the same pairs in the same order
        qb, hb = _pairs(grid, phi, coord, 0.3, 15.0, block)
        assert np.array_equal(qb, q) and np.array_equal(hb, h)


def _peak_counting(grid, phi, coord, block) -> tuple[int, int]:
    """(pairs, traced peak bytes) of a consumer that keeps nothing but a count, as the seeding's cuts do."""
    tracemalloc.start()
    try:
        n = sum(len(q) for q, _ in grid_pair_blocks(phi, np.full(len(phi), 0.15), coord - 5.0, coord + 5.0, grid,
                                                    block))
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_window_pairs_memory_grows_with_the_hits_not_with_the_pairs():
    small, large = _uniform(10_000, seed=2), _uniform(20_000, seed=2)
    n_small, peak_small = _peak_counting(*small, block=1 << 14)
    n_large, peak_large = _peak_counting(*large, block=1 << 14)
    assert n_large > 3.5 * n_small  # twice the density: four times the pairs (about 2 M here)
    assert peak_large < 2.5 * peak_small  # about twice the memory: the hits', not the pairs'
    # in one block the pairs' arrays are made whole: the memory grows with them
    one_small = _peak_counting(*small, block=1 << 40)[1]
    one_large = _peak_counting(*large, block=1 << 40)[1]
    assert one_large > 3.5 * one_small and one_large > 10 * peak_large


def test_seeds_do_not_depend_on_the_block_or_the_chunk(monkeypatch):
    from deepreco.generate import particle_gun
    from deepreco.simulate import simulate_event

    event = simulate_event(particle_gun(n=100, pdg=211, pt=(0.3, 5.0), seed=3), seed=3, event_id=1)
    hits = prepare_hits(event.hits)
    seeds = find_seeds(hits, layers(), pt_min=0.3)
    assert len(seeds["hits"]) > 100
    monkeypatch.setattr(seeding, "BLOCK", 64)  # many blocks on every layer pair
    monkeypatch.setattr(seeding, "DOUBLET_CHUNK", 50)  # and many chunks of doublets on every middle layer
    small = find_seeds(hits, layers(), pt_min=0.3)
    for key, value in seeds.items():
        assert np.array_equal(value, small[key], equal_nan=True), key


@pytest.fixture(scope="module")
def pions():
    """300 pions of 0.3 to 5 GeV with the real noise rates: a few thousand seeds, many of one particle."""
    from deepreco.generate import particle_gun
    from deepreco.simulate import simulate_event

    return simulate_event(particle_gun(n=300, pdg=211, pt=(0.3, 5.0), seed=4), seed=4, event_id=1)


def test_ckf_tracks_do_not_depend_on_the_chunks(pions, monkeypatch):
    """The seeds followed in parts of 64 (ten or more parts) and the finished candidates cut to the best of each
    seed at 40 give the same tracks, states and covariances as one part."""
    whole = CKFTracks().find(pions)
    assert len(whole["seeds"]["hits"]) > 10 * 64 and whole["n_tracks"] > 200
    cuts = []

    def spy(finished):
        out = cut(finished)
        cuts.append(sum(map(len, finished)) - sum(map(len, out)))
        return out

    cut = kalman._cut_finished
    monkeypatch.setattr(kalman, "SEED_CHUNK", 64)
    monkeypatch.setattr(kalman, "FINISHED_CUT", 40)
    monkeypatch.setattr(kalman, "_cut_finished", spy)
    parts = CKFTracks().find(pions)
    assert max(cuts) > 0  # the finished candidates were cut
    assert np.array_equal(parts["track_of_hit"], whole["track_of_hit"])
    for a, b in zip(parts["tracks"], whole["tracks"], strict=True):
        for name in kalman.Candidates.FIELDS:
            assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_prune_in_parts_is_prune_of_the_whole():
    """The merge of candidates that end on the same two hits crosses the parts; the cut per seed stays in one."""
    rng = np.random.default_rng(6)
    n, n_hits = 600, 40  # few hits: many candidates end on the same two
    hits = np.full((n, kalman.MAX_HITS), -1, np.int32)
    nh = rng.integers(2, 6, n)
    for i in range(n):
        hits[i, :nh[i]] = rng.choice(n_hits, nh[i], replace=False)
    seed = np.sort(rng.integers(0, 150, n))  # a seed's candidates together, as the parts hold them
    cand = kalman.Candidates(state=rng.normal(size=(n, 5)), cov=rng.normal(size=(n, 5, 5)), barrel=rng.random(n) < 0.5,
                             pos=rng.random(n), layer=rng.integers(0, 9, n), hits=hits, nh=nh,
                             chi2=rng.integers(0, 5, n).astype(float), holes=rng.integers(0, 3, n), seed=seed)
    finder = kalman.Finder(np.zeros(n_hits), layers())  # prune uses the number of hits only
    ends = np.r_[np.r_[0, np.flatnonzero(np.diff(seed)) + 1][::10], n]  # parts of 10 seeds
    parts = [cand.take(np.arange(a, b)) for a, b in zip(ends[:-1], ends[1:], strict=True)]
    whole = finder.prune(cand)
    assert len(whole) < n - 100  # many merged
    pruned = kalman.Candidates.concat(finder._prune_parts(parts))
    assert sum(len(finder.prune(p)) for p in parts) > len(whole)  # part by part alone would keep more
    for name in kalman.Candidates.FIELDS:
        assert np.array_equal(getattr(pruned, name), getattr(whole, name)), name


def _following_peak(seeds, finder) -> int:
    tracemalloc.start()
    try:
        finder.run(seeds, threads=1)  # one part at a time (threads advance parts side by side)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_following_memory_grows_with_the_part_not_with_the_seeds(pions, monkeypatch):
    """The Kalman filter's candidates and their temporaries are a part's: 4 parts, well under half the memory
    (about 0.4 of it: the seeds, the finished tracks and the merge's keys stay whole)."""
    hits = prepare_hits(pions.hits)
    seeds = {k: v[::3] for k, v in find_seeds(hits, layers(), pt_min=0.3).items()}  # 1,025 seeds: seconds
    finder = kalman.Finder(hits, layers())
    for layer in np.unique(hits.layer):
        finder.grid(int(layer))  # the layers' search grids, made once, are not the following's
    whole = _following_peak(seeds, finder)
    monkeypatch.setattr(kalman, "SEED_CHUNK", len(seeds["hits"]) // 4)
    monkeypatch.setattr(kalman, "FINISHED_CUT", len(seeds["hits"]) // 4)
    parts = _following_peak(seeds, finder)
    assert parts < 0.6 * whole, (parts, whole)

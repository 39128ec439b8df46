"""`ckf`'s compiled steps (`reconstruct.ckf.fast`, numba) give what the NumPy code gives: the helix's crossings
with cylinders, the transport of states and covariances, the next layer of each candidate, the pairs of a layer's
search with their states, covariances and chi2, the triplet seeds, the whole filter of a seed, the ambiguity
resolution and the tracks of a whole event."""

import numpy as np
import pytest

from deepreco.generate import particle_gun
from deepreco.reconstruct import get_method
from deepreco.reconstruct.ckf import fast, helix, kalman
from deepreco.reconstruct.ckf.ambiguity import best_per_seed, resolve
from deepreco.reconstruct.ckf.geometry import layers, prepare_hits
from deepreco.reconstruct.ckf.kalman import Finder, next_layer
from deepreco.reconstruct.ckf.seeding import find_seeds, find_triplets, strip_layer_pairs
from deepreco.simulate import simulate_event

needs_numba = pytest.mark.skipif(not fast.HAVE_NUMBA, reason="numba is not installed (the fast extra)")


@pytest.fixture(scope="module")
def event():
    """300 pions over the whole detector, pT 0.2-5 GeV, with noise."""
    particles = particle_gun(n=300, pdg=[211, -211], pt=(0.2, 5.0), eta=(-3.0, 3.0), seed=11)
    return simulate_event(particles, seed=11, event_id=11, noise_fraction=0.1)


def _plain(monkeypatch, call):
    with monkeypatch.context() as m:
        m.setattr(fast, "HAVE_NUMBA", False)
        return call()


@needs_numba
def test_crossings_with_a_cylinder_agree(monkeypatch):
    rng = np.random.default_rng(3)
    n = 5000
    x, y = rng.uniform(-300, 300, n), rng.uniform(-300, 300, n)
    psi = rng.uniform(-np.pi, np.pi, n)
    h = rng.choice([0.0, 1.0], n) * rng.normal(0, 2e-3, n)  # straight tracks too
    radius = rng.choice([32.0, 72.0, 260.0, 660.0, 1020.0], n)
    s, ok = helix.path_to_cylinder(x, y, psi, h, radius)
    s0, ok0 = _plain(monkeypatch, lambda: helix.path_to_cylinder(x, y, psi, h, radius))
    assert 0.3 < ok.mean() < 1.0  # both kinds: helices that reach the cylinder and loopers that do not
    assert np.array_equal(ok, ok0)
    np.testing.assert_allclose(s[ok], s0[ok], rtol=1e-12, atol=1e-9)


@pytest.fixture(scope="module")
def started(event):
    """The event's seeds started (each state on its third hit), with the finder."""
    lay = layers()
    hits = prepare_hits(event.hits)
    finder = Finder(hits, lay)
    return finder, finder.start(find_seeds(hits, lay, pt_min=0.3))


@needs_numba
@pytest.mark.parametrize("inward", [False, True])
def test_transport_and_next_layer_agree(started, inward, monkeypatch):
    finder, cand = started
    lay = layers()
    nl, s = next_layer(cand, lay, 2.0, inward)
    nl0, s0 = _plain(monkeypatch, lambda: next_layer(cand, lay, 2.0, inward))
    assert np.array_equal(nl, nl0) and (nl >= 0).mean() > 0.5
    np.testing.assert_allclose(s[nl >= 0], s0[nl >= 0], rtol=1e-12)
    go = np.flatnonzero(nl >= 0)
    to = (cand.state[go], cand.cov[go], cand.barrel[go], cand.pos[go], lay.barrel[nl[go]], lay.position[nl[go]])
    got = helix.transport(*to)
    want = _plain(monkeypatch, lambda: helix.transport(*to))
    assert np.array_equal(got[2], want[2]) and got[2].mean() > 0.9
    ok = got[2]
    np.testing.assert_allclose(got[0][ok], want[0][ok], rtol=1e-12, atol=1e-12)
    # the covariances in units of their diagonals (the Jacobian is analytic: the same to rounding)
    sigma = np.sqrt(np.einsum("nii->ni", want[1][ok]))
    assert np.abs((got[1][ok] - want[1][ok]) / (sigma[:, :, None] * sigma[:, None, :])).max() < 1e-10
    np.testing.assert_allclose(got[3][ok], want[3][ok], rtol=1e-12, atol=1e-9)


@needs_numba
def test_a_layers_search_agrees_pair_for_pair(started, monkeypatch):
    finder, cand = started
    lay, hits = finder.lay, finder.hits
    assert len(cand) > 200
    checked = 0
    for layer in np.unique(cand.layer):
        # the next layers out: the same layer (overlaps) and every other one the search may be asked for
        for target in (int(layer), int(layer) + 1):
            if target >= len(lay):
                continue
            mods = hits.module[cand.hits[:, :2]]
            for exclude in (None, mods):
                got = finder._pairs(cand, target, exclude_modules=exclude)
                want = _plain(monkeypatch, lambda t=target, e=exclude: finder._pairs(cand, t, exclude_modules=e))
                assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])  # the same pairs, in order
                for a, b in zip(got[2:], want[2:], strict=True):
                    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
                checked += len(got[0])
    assert checked > 500


@needs_numba
@pytest.mark.parametrize("kind", ["first", "displaced", "outer"])
def test_triplets_are_the_same(event, kind, monkeypatch):
    lay = layers()
    hits = prepare_hits(event.hits)
    kw = {"first": {"pt_min": 0.15}, "displaced": {"pt_min": 0.15, "d0_max": 50.0, "z0_max": 300.0},
          "outer": {"pt_min": 0.3, "d0_max": 300.0, "z0_max": 1500.0, "layer_pairs": strip_layer_pairs(lay)}}[kind]
    trip, quality = find_triplets(hits, lay, **kw)
    trip0, quality0 = _plain(monkeypatch, lambda: find_triplets(hits, lay, **kw))
    assert len(trip) > 300
    assert np.array_equal(trip, trip0)  # the same triplets in the same order
    np.testing.assert_allclose(quality, quality0, rtol=1e-9, atol=1e-12)
    # the middle layers on two threads, the busiest first: the same triplets in the same order, bit for bit
    from deepreco.reconstruct.ckf import seeding

    monkeypatch.setattr(seeding, "current_threads", lambda: 2)
    trip2, quality2 = find_triplets(hits, lay, **kw)
    assert np.array_equal(trip2, trip) and np.array_equal(quality2, quality)


@needs_numba
def test_an_events_tracks_are_the_same(event, monkeypatch):
    method = get_method("ckf")
    tracks = method.reconstruct(event)
    plain = _plain(monkeypatch, lambda: get_method("ckf").reconstruct(event))
    assert tracks.track_id.nunique() > 200
    merged = tracks.merge(plain, on="hit_id", suffixes=("", "_plain"))
    assert len(merged) == len(tracks) == len(plain)
    assert np.array_equal(merged.track_id.to_numpy(), merged.track_id_plain.to_numpy())


@needs_numba
@pytest.mark.parametrize("inward", [False, True])
def test_the_compiled_start_and_steps_find_what_the_numpy_steps_find(started, inward, monkeypatch):
    """`fast.start` and `fast.advance` (a part's candidates in one call a step) against the filter's NumPy steps
    (each operation over all candidates, the same compiled searches): the best candidate of each seed has the same
    hits in nearly every seed; where not, two of its candidates were within rounding of each other (the NumPy
    arithmetic and the compiled loop round the last bits differently, and the finite-difference Jacobian carries
    that on)."""
    finder = started[0]
    seeds = find_seeds(finder.hits, finder.lay, pt_min=0.3)
    kw = {"inward": True, "from_first": True} if inward else {}
    got = kalman.Finder(finder.hits, finder.lay, **kw).run(seeds, threads=1)
    monkeypatch.setattr(kalman, "COMPILED", False)
    want = kalman.Finder(finder.hits, finder.lay, **kw).run(seeds, threads=1)
    got, want = (c.take(best_per_seed(c.seed, c.nh, c.chi2)) for c in (got, want))
    assert len(seeds["hits"]) > 2000 and np.array_equal(got.seed, want.seed)
    same = np.array([n == m and np.array_equal(a[:n], b[:m]) for a, b, n, m in
                     zip(got.hits, want.hits, got.nh, want.nh, strict=True)])
    assert same.mean() > 0.998
    assert np.array_equal(got.holes[same], want.holes[same]) and np.array_equal(got.layer[same], want.layer[same])
    np.testing.assert_allclose(got.chi2[same], want.chi2[same], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(got.state[same], want.state[same], rtol=1e-6, atol=1e-5)
    assert (got.nh > 3).mean() > 0.8  # most seeds went on beyond their three hits


@needs_numba
def test_resolution_compiled_keeps_the_same_hits(started, monkeypatch):
    finder, cand = started
    n = len(finder.hits)
    need = 4 + (np.arange(len(cand)) % 3)
    got_used, want_used = np.zeros(n, bool), np.zeros(n, bool)
    got = resolve(cand.hits, cand.nh, cand.chi2, n, min_hits=need, used=got_used)
    want = _plain(monkeypatch, lambda: resolve(cand.hits, cand.nh, cand.chi2, n, min_hits=need, used=want_used))
    assert len(got[0]) > 500
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert np.array_equal(got_used, want_used)

"""The classical baseline (`ckf`): seeding, the Kalman filter's fit, and whole events."""

import numpy as np
import pandas as pd
import pytest

from deepreco.errors import DeepRecoError
from deepreco.event import Event
from deepreco.generate import particle_gun
from deepreco.metrics import evaluate
from deepreco.reconstruct.ckf import CKFTracks, _outgoing
from deepreco.reconstruct.ckf.ambiguity import best_per_seed
from deepreco.reconstruct.ckf.geometry import layers, prepare_hits
from deepreco.reconstruct.ckf.helix import propagate, transport_jacobian, wrap
from deepreco.reconstruct.ckf.join import join_tracks
from deepreco.reconstruct.ckf.kalman import Finder
from deepreco.reconstruct.ckf.seeding import find_seeds, fit_seeds
from deepreco.simulate import simulate_event


def _muon(pt: float, eta: float, phi: float, q: int = -1) -> pd.DataFrame:
    return pd.DataFrame({"particle_id": [1], "vx": [0.0], "vy": [0.0], "vz": [0.0], "px": [pt * np.cos(phi)],
                         "py": [pt * np.sin(phi)], "pz": [pt * np.sinh(eta)], "q": [q], "particle_type": [13 * -q]})


@pytest.fixture(scope="module")
def muons():
    """20 muons of 1 to 10 GeV from the origin, with the real noise rates of TrackML events."""
    return simulate_event(particle_gun(n=20, pdg=13, pt=(1.0, 10.0), seed=5), seed=5, event_id=1)


def test_helix_reaches_a_cylinder_and_comes_back():
    # a 1 GeV positive track from the origin: phi decreases along it (clockwise turn in a field along +z)
    state = np.array([[0.0, 0.0, 0.0, 0.5, 1.0]])  # on the cylinder r = 1e-9: phi, z, psi, cot theta, q/pT
    out, ok, s = propagate(state, np.array([True]), np.array([1e-9]), np.array([True]), np.array([500.0]))
    assert ok[0] and s[0] > 500.0
    assert out[0, 0] < 0 and out[0, 2] < out[0, 0]  # the direction turns faster than the position
    # going back to r = 200 (a negative path) lands where going there directly does
    back, ok, s_back = propagate(out, np.array([True]), np.array([500.0]), np.array([True]), np.array([200.0]))
    direct, _, _ = propagate(state, np.array([True]), np.array([1e-9]), np.array([True]), np.array([200.0]))
    assert ok[0] and s_back[0] < 0
    assert np.allclose(back, direct, atol=1e-6)


@pytest.mark.parametrize("barrel, to_barrel", [(True, True), (True, False), (False, True), (False, False)])
def test_transport_jacobian_is_the_derivative_of_the_propagation(barrel, to_barrel):
    """The analytic Jacobian against central differences of `propagate`, between every kind of surface, for
    tracks of 0.5 GeV and up (both charges) and straight ones."""
    rng = np.random.default_rng(3)
    n = 500
    state = np.column_stack([rng.uniform(-np.pi, np.pi, n), np.zeros(n), np.zeros(n), np.zeros(n),
                             rng.uniform(-2, 2, n) * rng.choice([0.0, 1.0], n, p=[0.1, 0.9])])
    state[:, 2] = state[:, 0] + rng.normal(0, 0.3, n)
    if barrel:
        state[:, 1], state[:, 3] = rng.uniform(-500, 500, n), rng.uniform(-3, 3, n)
    else:
        state[:, 1], state[:, 3] = rng.uniform(40, 300, n), rng.choice([-1, 1], n) * rng.uniform(0.5, 4, n)
    position = np.full(n, 100.0) if barrel else np.sign(state[:, 3]) * 600.0
    target = np.full(n, 180.0) if to_barrel else np.sign(state[:, 3]) * 1200.0
    b, tb = np.full(n, barrel), np.full(n, to_barrel)
    _, ok, s = propagate(state, b, position, tb, target)
    jac = transport_jacobian(state, b, position, tb, ok, s)
    steps = np.array([1e-6, 1e-4, 1e-6, 1e-6, 1e-6])
    numeric = np.empty_like(jac)
    for i in range(5):
        up, down = state.copy(), state.copy()
        up[:, i] += steps[i]
        down[:, i] -= steps[i]
        (o_up, ok_up, _), (o_down, ok_down, _) = propagate(up, b, position, tb, target), \
            propagate(down, b, position, tb, target)
        diff = o_up - o_down
        diff[:, [0, 2]] = wrap(diff[:, [0, 2]])
        numeric[:, :, i] = diff / (2 * steps[i])
        ok &= ok_up & ok_down
    assert ok.mean() > 0.8
    scale = np.abs(numeric).max(axis=(1, 2))[:, None, None] + 1.0
    assert (np.abs(jac - numeric) / scale)[ok].max() < 1e-6


def test_seeding_finds_a_clean_muon():
    event = simulate_event(_muon(3.0, 0.4, 1.0), seed=2, noise_fraction=0.0)
    hits = prepare_hits(event.hits)
    seeds = find_seeds(hits, layers())
    assert len(seeds["hits"]) >= 1
    # all of the muon's, and its parameters: charge, pT within 15 %, z0 within 1 mm
    assert np.all(seeds["qpt"] < 0)
    assert np.allclose(1 / np.abs(seeds["qpt"]), 3.0, rtol=0.15)
    assert np.allclose(seeds["z0"], 0.0, atol=1.0)
    assert np.allclose(seeds["cot"], np.sinh(0.4), atol=0.01)


def test_kalman_fit_of_a_noiseless_muon_agrees_with_the_truth():
    for pt, eta, q in ((20.0, 0.3, -1), (8.0, -1.2, 1)):
        event = simulate_event(_muon(pt, eta, -2.0, q), seed=3, noise_fraction=0.0)
        found = CKFTracks().find(event)
        assert found["n_tracks"] == 1
        state = found["tracks"][0].state[0]  # at the last hit: phi, z or r, psi, cot theta, q/pT
        assert abs(1 / abs(state[4]) - pt) / pt < 0.05
        assert np.sign(state[4]) == q
        assert abs(state[3] - np.sinh(eta)) < 0.01
        assert (found["track_of_hit"] >= 0).sum() == len(event.hits)  # every hit of the muon on the track


@pytest.mark.parametrize("pt, eta", [(3.0, 0.4), (0.5, 0.2), (1.0, 2.0), (0.6, -2.4)])
def test_inward_search_finds_the_hits_inside_a_late_seed(pt, eta):
    # a muon seeded on its 3rd to 5th layers: the search from the seed back towards the beam line finds its two
    # innermost hits, and does not go on past the beam line onto the hits of a muon where its helix continues
    mirror = _muon(pt, -eta, 1.0 + np.pi, q=1).assign(particle_id=2)
    event = simulate_event(pd.concat([_muon(pt, eta, 1.0), mirror]), seed=2, noise_fraction=0.0)
    hits = prepare_hits(event.hits)
    rows = np.flatnonzero((hits.layer >= 0) & (np.sign(hits.z) == np.sign(eta)))
    rows = rows[np.argsort(np.hypot(hits.r[rows], hits.z[rows]))]
    one_per_layer = rows[np.unique(hits.layer[rows], return_index=True)[1]]
    one_per_layer = one_per_layer[np.argsort(np.hypot(hits.r[one_per_layer], hits.z[one_per_layer]))]
    triplet = one_per_layer[2:5]
    taken = np.zeros(len(hits), bool)
    taken[triplet] = True
    finder = Finder(hits.without(taken), layers(), chi2_max=8.0, inward=True)
    cand = finder.run(fit_seeds(hits, triplet[None, :], np.zeros(1)))
    best = cand.take(best_per_seed(cand.seed, cand.nh, cand.chi2))
    found = set(best.hits[0, :best.nh[0]].tolist())
    assert set(one_per_layer[:2].tolist()) <= found
    assert np.all(np.sign(hits.z[list(found)]) == np.sign(eta))
    # outward, the same seed never goes back to them
    outward = Finder(hits.without(taken), layers(), chi2_max=8.0).run(fit_seeds(hits, triplet[None, :], np.zeros(1)))
    assert not set(one_per_layer[:2].tolist()) & set(outward.hits[outward.hits >= 0].tolist())


def test_search_from_the_first_hit_finds_the_layer_a_seed_skips():
    # a muon seeded on its 1st, 3rd and 4th layers: started from the seed's first hit with the three hits' state, the
    # search outward finds its hit on the 2nd layer, which following the seed from its last hit never sees
    event = simulate_event(_muon(0.8, 1.2, 1.0), seed=3, noise_fraction=0.0)
    hits = prepare_hits(event.hits)
    rows = np.flatnonzero(hits.layer >= 0)
    rows = rows[np.argsort(np.hypot(hits.r[rows], hits.z[rows]))]
    one_per_layer = rows[np.unique(hits.layer[rows], return_index=True)[1]]
    one_per_layer = one_per_layer[np.argsort(np.hypot(hits.r[one_per_layer], hits.z[one_per_layer]))]
    triplet = one_per_layer[[0, 2, 3]]
    taken = np.zeros(len(hits), bool)
    taken[triplet] = True
    seeds = fit_seeds(hits, triplet[None, :], np.zeros(1))
    found = Finder(hits.without(taken), layers(), chi2_max=8.0, from_first=True).run(seeds)
    assert one_per_layer[1] in set(found.hits[found.hits >= 0].tolist())
    followed = Finder(hits.without(taken), layers(), chi2_max=8.0).run(seeds)
    assert one_per_layer[1] not in set(followed.hits[followed.hits >= 0].tolist())


def test_muon_gun_with_noise(muons):
    tracks = CKFTracks().reconstruct(muons)
    result = evaluate(muons.truth, muons.particles, tracks)
    assert result["efficiency"] > 0.95
    assert result["fake_rate"] <= 0.05
    assert result["score"] > 0.9


def test_empty_event_gives_an_empty_table():
    cols = ["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"]
    tracks = CKFTracks().reconstruct(Event(hits=pd.DataFrame(columns=cols)))
    assert len(tracks) == 0 and list(tracks.columns) == ["hit_id", "track_id"]


def test_noise_only_event_gives_few_tracks():
    event = simulate_event(particle_gun(n=0, seed=1), seed=1)
    tracks = CKFTracks().reconstruct(Event(hits=event.hits))
    assert tracks["track_id"].nunique() <= 2


def test_event_without_truth_reconstructs(muons):
    tracks = CKFTracks().reconstruct(Event(hits=muons.hits, event_id=1))
    assert tracks["hit_id"].is_unique and (tracks["track_id"] >= 0).all()
    assert tracks["track_id"].nunique() >= 19


def test_no_track_takes_a_hit_twice(muons):
    # the overlap search once took the layer's first hit again after the overlapping one
    found = CKFTracks().find(muons)
    for cand in found["tracks"]:
        for row, nh in zip(cand.hits, cand.nh, strict=True):
            assert len(np.unique(row[:nh])) == nh


def _displaced_pions(n: int = 20, seed: int = 4, radius: float = 40.0) -> pd.DataFrame:
    """Pions made ``radius`` mm off the beam line (40: between the first two pixel layers), heading 60 degrees off
    the radial direction: a transverse impact parameter of 0.87 ``radius``, far outside the first pass's 1 mm."""
    rng = np.random.default_rng(seed)
    phi_v = rng.uniform(-np.pi, np.pi, n)
    phi = phi_v + np.where(np.arange(n) % 2 == 0, 1.0, -1.0) * np.pi / 3
    pt, eta = rng.uniform(1.0, 3.0, n), rng.uniform(-0.8, 0.8, n)
    return pd.DataFrame({"particle_id": np.arange(1, n + 1), "vx": radius * np.cos(phi_v), "vy": radius * np.sin(phi_v),
                         "vz": rng.uniform(-20.0, 20.0, n), "px": pt * np.cos(phi), "py": pt * np.sin(phi),
                         "pz": pt * np.sinh(eta), "q": np.where(np.arange(n) % 4 < 2, 1, -1), "particle_type": 211})


def test_displaced_pass_finds_tracks_from_off_the_beam_line():
    event = simulate_event(_displaced_pions(), seed=6, event_id=1)  # with the real noise rates
    first = evaluate(event.truth, event.particles,
                     CKFTracks(displaced_d0_max=0.0, outer_d0_max=0.0).reconstruct(event))
    both = evaluate(event.truth, event.particles, CKFTracks().reconstruct(event))
    assert first["efficiency"] < 0.3  # the beam-line seeds miss them
    assert both["efficiency"] > 0.85 and both["score"] > 0.8
    # the free seeds line up noise hits too: the later passes' tracks need more hits, tighter gates
    fakes = [round(r["fake_rate"] * r["n_tracks"]) for r in (first, both)]
    assert fakes[1] <= fakes[0] + 2, fakes


def test_outer_pass_finds_tracks_that_start_beyond_the_pixels():
    event = simulate_event(_displaced_pions(radius=200.0), seed=7, event_id=1)  # between pixels and strips
    pixel_only = evaluate(event.truth, event.particles, CKFTracks(outer_d0_max=0.0).reconstruct(event))
    both = evaluate(event.truth, event.particles, CKFTracks().reconstruct(event))
    assert pixel_only["efficiency"] < 0.2
    # 0.45: half of them cross 6 or 7 layers, and the later passes' tracks need 7 hits unless they fit well and
    # have no hole (6 hits whatever the fit let noise in: 7 tracks of noise on a 20-muon gun)
    assert both["efficiency"] > 0.4 and both["score"] > 0.3
    # the strip seeds make a few tracks of noise hits an event: 4 here (at most 2 on the noise-only event)
    fakes = [round(r["fake_rate"] * r["n_tracks"]) for r in (pixel_only, both)]
    assert fakes[1] <= fakes[0] + 4, fakes


def _labels(event, pid_of_hit):
    """Track labels per hit row from a particle id per hit row (0: no track)."""
    return np.where(pid_of_hit > 0, np.unique(pid_of_hit, return_inverse=True)[1], -1)


def _score(event, labels):
    keep = labels >= 0
    return evaluate(event.truth, event.particles,
                    pd.DataFrame({"hit_id": event.hits["hit_id"].to_numpy()[keep], "track_id": labels[keep]}))


def test_follow_makes_one_track_of_the_pieces_a_method_split_a_particle_into(muons):
    # each muon's hits cut into an inner and an outer piece, and one muon's outer piece labelled as another's
    # inner one (a merge): followed from its innermost hits, each muon is one track again
    event = muons
    pid = event.truth.set_index("hit_id").reindex(event.hits["hit_id"])["particle_id"].to_numpy()
    reach = np.hypot(np.hypot(event.hits["x"], event.hits["y"]), event.hits["z"]).to_numpy()
    pieces = pid.copy()
    for p in np.unique(pid[pid > 0]):
        rows = np.flatnonzero(pid == p)
        outer = rows[np.argsort(reach[rows])][len(rows) // 2:]
        pieces[outer] = p + 1000
    pieces[pieces == pid.max() + 1000] = pid.min(where=pid > 0, initial=pid.max())  # the last outer piece merged
    split = _score(event, _labels(event, pieces))
    followed = CKFTracks().follow(event, _labels(event, pieces))
    whole = _score(event, followed)
    assert split["score"] < 0.6 and whole["score"] > 0.95 and whole["efficiency"] == 1.0
    truth_tracks = [np.unique(followed[pid == p]) for p in np.unique(pid[pid > 0])]
    assert all(len(t) == 1 and t[0] >= 0 for t in truth_tracks)  # one track a muon, all its hits
    # no track's hits are kept twice, and the followed tracks are the same as ckf's own on this clean gun
    own = _score(event, CKFTracks().find(event)["track_of_hit"])
    assert whole["score"] >= own["score"] - 1e-9


def test_a_second_round_seeds_the_tracks_whose_first_hit_is_wrong(muons):
    # each muon's track given a noise hit inward of its first, a little off in phi: the first round's seeds miss
    # (the tracks are kept as given, noise hit and all), the second, without that innermost hit, follows them
    event = muons
    pid = event.truth.set_index("hit_id").reindex(event.hits["hit_id"])["particle_id"].to_numpy()
    xyz = event.hits[["x", "y", "z"]].to_numpy()
    phi = np.arctan2(xyz[:, 1], xyz[:, 0])
    reach = np.linalg.norm(xyz, axis=1)
    labels = _labels(event, pid)
    noise, added = np.flatnonzero(pid == 0), []
    for track in np.unique(labels[labels >= 0]):
        rows = np.flatnonzero(labels == track)
        first = rows[np.argmin(reach[rows])]
        turn = np.abs(np.angle(np.exp(1j * (phi[noise] - phi[first]))))
        cand = np.flatnonzero((reach[noise] < reach[first]) & (turn > 0.05) & ~np.isin(noise, added))
        if len(cand):
            added.append(noise[cand[np.argmin(turn[cand])]])
            labels[added[-1]] = track
    assert len(added) >= 15
    one, two = (CKFTracks().follow(event, labels, rounds=k) for k in (1, 2))
    assert (one[added] >= 0).sum() == len(added)  # the first round alone: every noise hit still in a track
    assert (two[added] >= 0).sum() <= 2
    assert _score(event, two)["score"] >= _score(event, one)["score"] > 0.95  # noise hits weigh nothing


def test_follow_keeps_what_the_filter_does_not_make_when_long_enough(muons):
    event = muons
    labels = np.full(event.n_hits, -1, np.int64)
    noise = np.flatnonzero(event.truth.set_index("hit_id").reindex(event.hits["hit_id"])["particle_id"].to_numpy()
                           == 0)[:4]
    labels[noise] = 0  # four noise hits: no helix through them makes a track
    assert (CKFTracks().follow(event, labels, keep=5) < 0).all()
    kept = CKFTracks().follow(event, labels, keep=4)
    assert (kept[noise] == kept[noise[0]]).all() and kept[noise[0]] >= 0 and (kept >= 0).sum() == 4
    with pytest.raises(DeepRecoError, match="one label per hit"):
        CKFTracks().follow(event, labels[:-1])
    assert (CKFTracks().follow(event, np.full(event.n_hits, -1)) < 0).all()  # no tracks: nothing to follow


def test_follow_runs_the_later_passes_before_the_given_tracks_take_their_hits_back():
    # displaced pions given as pieces that each mix two pions (three hits of each): the filter makes whole tracks of
    # some; with later=True the displaced pass finds the others before the pieces take their hits back (the other
    # way round, the pieces hold every hit the filter left and the passes find nothing); without the joining, which
    # mends some pieces too
    event = simulate_event(_displaced_pions(), seed=6, event_id=1)
    pid = event.truth.set_index("hit_id").reindex(event.hits["hit_id"])["particle_id"].to_numpy()
    reach = np.linalg.norm(event.hits[["x", "y", "z"]].to_numpy(), axis=1)
    labels = np.full(event.n_hits, -1, np.int64)
    for p in np.unique(pid[pid > 0]):
        rows = np.flatnonzero(pid == p)
        rows = rows[np.argsort(reach[rows])]
        labels[rows] = (p // 2) * 100 + np.arange(len(rows)) // 3  # pions p and p + 1 share their pieces
    pieces, later = (CKFTracks(join=False).follow(event, labels, later=k) for k in (False, True))
    assert _score(event, pieces)["efficiency"] < 0.7
    assert _score(event, later)["efficiency"] > 0.9 and _score(event, later)["score"] > 0.85


def test_extend_adds_the_later_passes_to_another_methods_tracks():
    # the first pass's tracks, extended, are the whole ckf's: the later passes run on the hits a method left free
    event = simulate_event(_displaced_pions(), seed=6, event_id=1)
    first = CKFTracks(displaced_d0_max=0.0, outer_d0_max=0.0).find(event)["track_of_hit"]
    extended = CKFTracks().extend(event, first)
    whole = CKFTracks().find(event)["track_of_hit"]
    assert np.array_equal(extended[first >= 0], first[first >= 0])  # the method's tracks stay as they were
    assert np.array_equal(extended, whole) and extended.max() > first.max()
    with pytest.raises(DeepRecoError, match="one label per hit"):
        CKFTracks().extend(event, first[:-1])


def test_later_outward_drops_the_loopers_of_noise_that_soft_outer_seeds_make(muons):
    # outer seeds from 0.2 GeV line up the noise hits of the strips on loopers (r rising, then falling back)
    loose = evaluate(muons.truth, muons.particles, CKFTracks(later_outward=False).reconstruct(muons))
    safe = evaluate(muons.truth, muons.particles, CKFTracks().reconstruct(muons))  # the defaults: 0.2 GeV, outward
    assert loose["fake_rate"] > 0.1
    assert safe["fake_rate"] <= 0.05 and safe["efficiency"] > 0.95
    noise = simulate_event(particle_gun(n=0, seed=1), seed=1)
    tracks = CKFTracks().reconstruct(Event(hits=noise.hits))
    assert tracks["track_id"].nunique() <= 2


def test_five_hit_tracks_from_pixel_seeds_but_not_from_strip_seeds(muons):
    # 5-hit tracks of the displaced pass (pixel seeds, the default) find no noise; of the outer pass they would
    noise = Event(hits=simulate_event(particle_gun(n=0, seed=1), seed=1).hits)
    assert CKFTracks().displaced_min_hits == 5 and CKFTracks().outer_min_hits == 6 and CKFTracks().outer_soft_pt == 0.2
    assert CKFTracks().reconstruct(noise)["track_id"].nunique() <= 2
    assert CKFTracks(outer_min_hits=5).reconstruct(noise)["track_id"].nunique() > 5
    loose = evaluate(muons.truth, muons.particles, CKFTracks(outer_min_hits=5).reconstruct(muons))
    assert loose["fake_rate"] > 0.1


def test_later_outward_keeps_the_displaced_tracks():
    event = simulate_event(_displaced_pions(), seed=6, event_id=1)
    result = evaluate(event.truth, event.particles, CKFTracks().reconstruct(event))
    assert result["efficiency"] > 0.85 and result["score"] > 0.8


def test_outgoing_ends_a_candidate_where_its_hits_return_towards_the_beam_line():
    class Cand:  # the two fields _outgoing reads
        hits = np.array([[0, 1, 2, -1], [0, 1, 2, 3], [0, 2, 1, -1], [2, 0, 1, 3]])
        nh = np.array([3, 4, 3, 4])

    class H:
        r = np.array([100.0, 200.0, 300.0, 290.0])  # hit 3 10 mm below hit 2: within the tolerance

    assert _outgoing(H, Cand, 20.0).tolist() == [3, 4, 2, 1]
    assert _outgoing(H, Cand, 5.0).tolist() == [3, 3, 2, 1]


@pytest.mark.parametrize("source", ["muons", "soft pions"])
def test_join_makes_one_track_of_a_particles_inner_and_outer_pieces(muons, source):
    # each particle's hits cut into an inner and an outer piece with labels of their own (the outer pieces'
    # labels shuffled): joined, each particle is one track again, and no two particles share one
    event = muons if source == "muons" else simulate_event(
        particle_gun(n=20, pdg=211, pt=(0.4, 1.0), seed=7), seed=7, event_id=1)
    pid = event.truth.set_index("hit_id").reindex(event.hits["hit_id"])["particle_id"].to_numpy()
    reach = np.linalg.norm(event.hits[["x", "y", "z"]].to_numpy(), axis=1)
    labels = np.full(event.n_hits, -1, np.int64)
    particles = [p for p in np.unique(pid[pid > 0]) if (pid == p).sum() >= 8]
    shuffled = np.random.default_rng(0).permutation(len(particles))
    for k, p in enumerate(particles):
        rows = np.flatnonzero(pid == p)
        rows = rows[np.argsort(reach[rows])]
        labels[rows[:len(rows) // 2]] = k
        labels[rows[len(rows) // 2:]] = len(particles) + shuffled[k]
    assert len(particles) >= 15
    joined = join_tracks(prepare_hits(event.hits), layers(), labels)
    assert (joined[labels < 0] < 0).all()
    per_particle = [np.unique(joined[pid == p]) for p in particles]
    whole = sum(len(t) == 1 for t in per_particle)
    assert whole >= len(particles) - 1  # at most one particle left in two pieces
    owners = [t[0] for t in per_particle if len(t) == 1]
    assert len(set(owners)) == len(owners)  # no two particles joined
    assert _score(event, joined)["score"] > _score(event, labels)["score"] + 0.3
    # the ckf's own tracks of the muon gun are whole already: joining leaves them as they are
    if source == "muons":
        plain, joined = (CKFTracks(join=k).find(event)["track_of_hit"] for k in (False, True))
        assert np.array_equal(plain, joined)


@pytest.mark.parametrize("compiled", [True, False])
def test_threads_cut_the_seeds_into_parts_and_find_the_same_candidates(muons, monkeypatch, compiled):
    import deepreco.reconstruct.ckf.kalman as kalman
    from deepreco.reconstruct.ckf import fast

    if compiled and not fast.HAVE_NUMBA:
        pytest.skip("numba is not installed (the fast extra)")
    monkeypatch.setattr(kalman, "COMPILED", compiled)
    hits = prepare_hits(muons.hits)
    seeds = find_seeds(hits, layers())
    assert len(seeds["hits"]) >= 20
    monkeypatch.setattr(kalman, "MIN_PART", 4)  # parts of a few seeds: several parts on each of 3 threads
    parts = []
    if compiled:
        monkeypatch.setattr(fast, "start", lambda trip, *a, f=fast.start: parts.append(len(trip)) or f(trip, *a))
    else:
        monkeypatch.setattr(kalman.Finder, "start", lambda self, s, f=kalman.Finder.start:
                            parts.append(len(s["hits"])) or f(self, s))

    def found(threads):
        parts.clear()
        cand = Finder(hits, layers()).run(seeds, threads=threads)
        best = cand.take(best_per_seed(cand.seed, cand.nh, cand.chi2))
        rows = sorted((int(s), tuple(h[:n]), round(float(c), 9)) for s, h, n, c in
                      zip(best.seed, best.hits, best.nh, best.chi2, strict=True))
        return rows, list(parts)

    one, one_parts = found(1)
    three, three_parts = found(3)
    assert len(one_parts) == 1 and len(three_parts) >= 3 and sum(three_parts) == len(seeds["hits"])
    assert three == one and len(one) >= 20  # at least a candidate per muon, the same on any number of threads

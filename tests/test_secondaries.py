"""Material secondaries of generated events: nuclear interactions, photon conversions, the displaced share."""

import numpy as np
import pandas as pd
import pytest

from deepreco.errors import EventError
from deepreco.simulate import simulate_event
from deepreco.simulate.secondaries import (
    CORE_P_MAX_GEV,
    CORE_P_SCALE_GEV,
    M_ELECTRON,
    MULTIPLICITY_P,
    MULTIPLICITY_TRIALS,
    POSITIVE_SHARE,
    TAIL_SHARE,
    conversion_products,
    nuclear_products,
)


def _directions(rng, n):
    d = rng.standard_normal((n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def test_nuclear_products_are_soft_isotropic_and_independent_of_the_parent():
    rng = np.random.default_rng(5)
    n = 20000
    top = np.repeat([0.3, 2.0, 30.0], n)  # parents below the spectrum's edge, above it, far above it
    p_in = _directions(rng, top.size) * top[:, None]
    parent, p_out, pdg, q = nuclear_products(p_in, rng)
    assert np.all(np.diff(parent) >= 0) and set(np.unique(q)) == {-1, 1} and set(np.unique(pdg)) <= {211, -211, 2212}
    assert np.array_equal(np.sign(pdg), q)
    count = np.bincount(parent, minlength=top.size)
    assert count.min() >= 1 and count.max() <= 1 + MULTIPLICITY_TRIALS
    assert abs(count.mean() - (1 + MULTIPLICITY_TRIALS * MULTIPLICITY_P)) < 0.02
    assert abs(np.mean(q > 0) - POSITIVE_SHARE) < 0.01
    mag = np.linalg.norm(p_out, axis=1)
    kind = np.searchsorted([1.0, 10.0], top[parent])  # 0, 1, 2: the parent's momentum class
    # the new rule in place of momentum conservation: none faster than a parent above the edge ...
    assert np.all(mag[kind > 0] <= top[parent][kind > 0] * (1 + 1e-12))
    assert np.all(mag[kind == 0] < CORE_P_MAX_GEV)
    for k in (1, 2):
        assert abs(np.mean(mag[kind == k] > CORE_P_MAX_GEV) - TAIL_SHARE) < 0.006
    # ... and below the edge the same spectrum for every parent, p exp(-p / scale) truncated at the edge
    grid = np.linspace(0.0, CORE_P_MAX_GEV, 20001)
    density = grid * np.exp(-grid / CORE_P_SCALE_GEV)
    cdf = np.cumsum(density) / density.sum()
    for k in (0, 1, 2):
        core = np.sort(mag[(kind == k) & (mag < CORE_P_MAX_GEV)])
        d = np.abs(np.interp(core, grid, cdf) - (np.arange(core.size) + 0.5) / core.size).max()
        assert d < 0.015, (k, d)  # one-sample KS distance; about 1.6 / sqrt(n) = 0.008 by chance at most
    # isotropic in the lab: no memory of the parent's direction; the products' sum does not carry its momentum
    along = np.einsum("ij,ij->i", p_out, p_in[parent] / top[parent, None])
    assert abs(np.mean(along / mag)) < 0.01
    total = np.bincount(parent, weights=along, minlength=top.size)
    far = top == 30.0
    assert abs(total[far].mean()) < 0.01 and np.median(np.abs(total[far])) < 0.05 * 30.0  # the real lists: 5 %
    for axis in range(3):
        assert abs(np.mean(p_out[:, axis] / mag)) < 0.01


def test_conversion_makes_an_electron_positron_pair_that_shares_the_photon_energy():
    rng = np.random.default_rng(2)
    photon = np.array([[0.3, 0.1, 2.0], [1.0, -4.0, 0.5], [0.0, 0.02, 0.01]] * 1000)
    parent, p, pdg, q = conversion_products(photon, rng)
    assert np.array_equal(parent, np.repeat(np.arange(len(photon)), 2))
    assert np.array_equal(pdg.reshape(-1, 2), np.tile([11, -11], (len(photon), 1)))
    assert np.array_equal(q.reshape(-1, 2).sum(axis=1), np.zeros(len(photon)))
    e = np.sqrt((p**2).sum(1) + M_ELECTRON**2).reshape(-1, 2).sum(axis=1)
    np.testing.assert_allclose(e, np.linalg.norm(photon, axis=1), rtol=1e-12)
    # both along the photon
    cos = np.einsum("ij,ij->i", p, np.repeat(photon, 2, axis=0)) / np.linalg.norm(p, axis=1) \
        / np.repeat(np.linalg.norm(photon, axis=1), 2)
    np.testing.assert_allclose(cos, 1.0, atol=1e-12)
    # Bethe-Heitler sharing: flat-ish, an asymmetric split more likely than with a uniform share
    x = np.sqrt((p[0::2] ** 2).sum(1) + M_ELECTRON**2) / np.linalg.norm(photon, axis=1)
    assert 0.45 < x.mean() < 0.55
    assert np.mean(np.abs(x - 0.5) > 0.4) > 0.2 * 1.05  # uniform: 0.2; 1 - 4/3 x (1 - x) favours the ends


def _pions(n=60, seed=3, p=3.0):
    rng = np.random.default_rng(seed)
    eta = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    pt = p / np.cosh(eta)
    return pd.DataFrame({"particle_id": np.arange(1, n + 1), "vx": 0.0, "vy": 0.0, "vz": 0.0,
                         "px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta),
                         "q": np.where(np.arange(n) % 2 == 0, 1, -1), "particle_type": 211})


def test_nuclear_secondaries_start_where_their_parent_ends_and_leave_hits():
    table = _pions()
    event = simulate_event(table, seed=4, noise_fraction=0.0, secondaries=True, interaction_scale=8.0)
    parts = event.particles
    sec = parts[parts["parent_id"] > 0]
    assert len(sec) > 20
    assert set(parts["parent_id"][parts["parent_id"] > 0]) <= set(parts["particle_id"])
    assert parts["particle_id"].is_unique and (parts["particle_id"] > 0).all()
    assert (np.hypot(sec["px"], sec["py"]) >= 0.1).all() and set(sec["q"]) <= {-1, 1}
    # a secondary starts on a material surface where its parent's hits end: a primary parent (going outwards)
    # has no hit farther out than the layer (its modules stand up to 5.4 mm off its mean radius)
    r_sec = np.hypot(sec["vx"], sec["vy"]).to_numpy()
    assert (r_sec > 15.0).all()
    truth = event.truth
    last = np.hypot(truth["tx"], truth["ty"]).groupby(truth["particle_id"]).max()
    parent_last = last.reindex(sec["parent_id"]).to_numpy()
    seen = np.isfinite(parent_last) & (sec["parent_id"] <= len(table)).to_numpy()
    assert seen.sum() > 10
    assert np.all(parent_last[seen] <= r_sec[seen] + 12.0)  # products start up to 5.4 mm inside a strip layer
    assert np.mean(parent_last[seen] > r_sec[seen] - 40.0) > 0.9  # ... and its last hit is on that layer
    assert (sec["nhits"] > 0).sum() > 10  # secondaries are propagated and leave hits, scored like any particle
    assert event.truth.loc[event.truth["particle_id"].isin(sec["particle_id"]), "weight"].sum() > 0


def test_secondaries_are_off_by_default_and_deterministic():
    table = _pions(n=20)
    plain = simulate_event(table, seed=7, noise_fraction=0.0)
    again = simulate_event(table, seed=7, noise_fraction=0.0, secondaries=True)
    assert "parent_id" not in plain.particles.columns and len(plain.particles) == len(table)
    assert len(again.particles) >= len(table)
    one = simulate_event(table, seed=7, noise_fraction=0.0, secondaries=True)
    pd.testing.assert_frame_equal(one.particles, again.particles)
    pd.testing.assert_frame_equal(one.hits, again.hits)


def test_photons_convert_only_with_neutral_secondaries():
    n = 400
    rng = np.random.default_rng(1)
    phi = rng.uniform(-np.pi, np.pi, n)
    photons = pd.DataFrame({"particle_id": np.arange(1, n + 1), "vx": 0.0, "vy": 0.0, "vz": 0.0,
                            "px": 2.0 * np.cos(phi), "py": 2.0 * np.sin(phi), "pz": 0.3, "q": 0,
                            "particle_type": 22})
    off = simulate_event(photons, seed=1, noise_fraction=0.0, secondaries=True)
    assert len(off.particles) == n and off.n_hits == 0
    on = simulate_event(photons, seed=1, noise_fraction=0.0, secondaries=True, neutral_secondaries=True)
    sec = on.particles[on.particles["parent_id"] > 0]
    # about 7/9 of the tracker's 15-25 % X0 at eta = 0: some tens of the 400 photons convert
    pairs = sec.groupby("parent_id")["particle_type"].agg(lambda t: tuple(sorted(t)))
    assert 20 < len(pairs) < 150
    assert (pairs == (-11, 11)).mean() > 0.8  # both of a pair are listed unless one is below 0.1 GeV
    assert on.n_hits > 0


@pytest.mark.parametrize("secondaries", [False, True])
def test_displaced_share_of_a_small_generated_event(secondaries):
    pytest.importorskip("pythia8mc")
    from deepreco.generate import ttbar_with_pileup

    table = ttbar_with_pileup(mu=10, seed=3, eta_max=4.0)
    event = simulate_event(table, seed=3, noise_fraction=0.0, secondaries=secondaries)
    parts = event.particles
    pt = np.hypot(parts["px"], parts["py"])
    charged = (parts["q"] != 0) & (pt >= 0.1)
    share = float((np.hypot(parts["vx"], parts["vy"])[charged] > 1.0).mean())
    if secondaries:
        assert share > 0.2  # the real lists: 0.29; Pythia's decays alone: about 0.09
    else:
        assert share < 0.15


def test_particle_ids_too_large_for_secondaries_raise_one_line_error():
    table = _pions(n=30)
    table.loc[0, "particle_id"] = 1 << 62  # one id up there (all of them that high would read as TrackML barcodes)
    with pytest.raises(EventError, match="too large to number the secondaries"):
        simulate_event(table, seed=4, noise_fraction=0.0, secondaries=True, interaction_scale=8.0)

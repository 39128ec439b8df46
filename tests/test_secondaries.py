"""Material secondaries of generated events: nuclear interactions, photon conversions, the displaced share."""

import numpy as np
import pandas as pd
import pytest

from deepreco.errors import EventError
from deepreco.simulate import simulate_event
from deepreco.simulate.secondaries import (
    FRAGMENT_T_GEV,
    M_ELECTRON,
    M_NUCLEON,
    conversion_products,
    nuclear_products,
)


def _energy(p, pdg):
    mass = np.select([np.abs(pdg) == 2212, np.abs(pdg) == 2112, pdg == 111, np.abs(pdg) == 211],
                     [0.93827208816, 0.93956542052, 0.1349768, 0.13957039], 0.0)
    return np.sqrt(np.einsum("ij,ij->i", p, p) + mass**2)


def test_nuclear_interaction_conserves_momentum_within_the_fragments_spread():
    rng = np.random.default_rng(5)
    n = 2000
    direction = rng.standard_normal((n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    p_in = direction * rng.uniform(1.0, 20.0, n)[:, None]
    mass = np.full(n, 0.13957039)
    parent, p_out, pdg, q, fragment = nuclear_products(p_in, mass, np.full(n, 211), rng)
    assert np.all(np.diff(parent) >= 0) and set(np.unique(q)) <= {-1, 0, 1}
    counts = np.bincount(parent[~fragment], minlength=n)
    assert counts.min() >= 2  # a nucleon and at least one pion for each 1-20 GeV pion
    # the collision with one nucleon at rest: momentum and energy exactly conserved
    hard = np.stack([np.bincount(parent[~fragment], weights=p_out[~fragment, j], minlength=n) for j in range(3)], 1)
    np.testing.assert_allclose(hard, p_in, atol=1e-9 * np.abs(p_in).max())
    e_hard = np.bincount(parent[~fragment], weights=_energy(p_out[~fragment], pdg[~fragment]), minlength=n)
    np.testing.assert_allclose(e_hard, np.sqrt((p_in**2).sum(1) + mass**2) + M_NUCLEON, rtol=1e-9)
    # all products: off by the fragments' momenta only, which are isotropic and soft (mean T = FRAGMENT_T_GEV)
    total = np.stack([np.bincount(parent, weights=p_out[:, j], minlength=n) for j in range(3)], 1)
    residual = np.linalg.norm(total - p_in, axis=1)
    frag_sum = np.bincount(parent[fragment], weights=np.linalg.norm(p_out[fragment], axis=1), minlength=n)
    assert np.all(residual <= frag_sum + 1e-9)
    assert fragment.sum() > 0.5 * n
    assert np.abs((total - p_in).mean(axis=0)).max() < 0.02  # no net push: the nucleus recoils at random
    t = _energy(p_out[fragment], pdg[fragment]) - np.where(pdg[fragment] == 2212, 0.93827208816, 0.93956542052)
    assert 0.7 * FRAGMENT_T_GEV < t.mean() < 1.3 * FRAGMENT_T_GEV


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

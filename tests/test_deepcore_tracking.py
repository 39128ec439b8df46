"""DeepCore's strip barrel and track building (issue 26, items 1-2): a muon through pixels and strips is one track
from either seed list, a seed without compatible strip hits makes none, bad input is one clear line."""

import numpy as np
import pandas as pd
import pytest
import torch

from deepreco.deepcore.baseline import jetcore_seeds
from deepreco.deepcore.detector import PixelBarrel
from deepreco.deepcore.evaluate import SHIPPED_MODEL, deepcore_seeds
from deepreco.deepcore.events import simulate
from deepreco.deepcore.strips import StripBarrel, strip_hits
from deepreco.deepcore.tracking import BuildConfig, build_tracks
from deepreco.deepcore.train import load_model
from deepreco.errors import DeepRecoError

torch.set_num_threads(1)
DET = PixelBarrel()
STRIPS = StripBarrel()


def particles(tracks):
    """Particles from the origin, one per (pT [GeV], eta, phi, charge)."""
    pt, eta, phi, q = (np.array(c, dtype=float) for c in zip(*tracks, strict=True))
    n = len(pt)
    return pd.DataFrame({"particle_id": np.arange(1, n + 1), "vx": 0.0, "vy": 0.0, "vz": 0.0,
                         "px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "q": q,
                         "nhits": 0, "particle_type": 13})


def muon_event(pt=100.0, eta=0.2, phi=0.3, q=1):
    ev = simulate(particles([(pt, eta, phi, q)]), pd.DataFrame({"pt": [1500.0], "eta": [eta], "phi": [phi]}),
                  np.zeros(3), np.random.default_rng(1), DET)
    return ev, strip_hits(ev.particles, 5)


def test_strip_hits_are_reproducible_and_measure_what_the_layers_measure():
    parts = particles([(100.0, 0.2, 0.3, 1), (1.0, -0.5, 2.0, -1), (0.6, 0.1, -2.0, 1)])
    a, b = strip_hits(parts, 7), strip_hits(parts, 7)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(strip_hits(parts, 8))  # the seed draws the scattering and the efficiency
    stiff = a[a["particle_id"] == 1]
    assert sorted(stiff["layer"]) == list(range(10))
    r = np.hypot(a["x"], a["y"]).to_numpy()
    assert np.allclose(r, np.asarray(STRIPS.radii)[a["layer"]], atol=1e-3)
    pitch = np.asarray(STRIPS.pitch)[a["layer"]]
    dphi = np.angle(np.exp(1j * (a["phi"] - np.arctan2(a["y"], a["x"]))))
    assert (np.abs(dphi * r) <= 0.5 * pitch + 1e-9).all()  # the strip holding the crossing
    stereo = a["stereo"].to_numpy()
    dz = np.abs(a["zm"] - a["z"]).to_numpy()
    assert (dz[stereo] < 3.0).all() and np.sqrt(np.mean(dz[stereo] ** 2)) < 1.0  # 100 mrad: z to a few 0.1 mm
    length = np.asarray(STRIPS.strip_length)[a["layer"]]
    assert (dz[~stereo] <= 0.5 * length[~stereo] + 1e-9).all()  # mono: the sensor's centre
    # a 0.6 GeV track curls (radius 0.53 m) before the outer TOB layers
    assert a.loc[a["particle_id"] == 3, "layer"].max() < 9


def test_particles_in_one_strip_make_one_hit():
    pair = particles([(500.0, 0.3, 1.0, 1), (500.0, 0.3, 1.0 + 2e-6, 1)])  # 0.5 um apart at the first layer
    h = strip_hits(pair, 2, StripBarrel(efficiency=1.0))
    assert len(h) == 10 and (h["n_particles"] == 2).all() and (h["particle_id"] == 1).all()
    apart = strip_hits(particles([(500.0, 0.3, 1.0, 1), (500.0, 0.3, 1.01, 1)]), 2, StripBarrel(efficiency=1.0))
    assert len(apart) == 20 and (apart["n_particles"] == 1).all()


def test_scattering_grows_with_the_material():
    parts = particles([(1.0, 0.0, 0.1 * k, 1) for k in range(60)])
    thin = strip_hits(parts, 3, StripBarrel(x0=(1e-6,) * 10))
    thick = strip_hits(parts, 3, StripBarrel(x0=(0.1,) * 10))
    ref = strip_hits(parts, 3, StripBarrel(x0=(1e-6,) * 10, efficiency=1.0))

    def spread(h):
        last = h[h["layer"] == 9].set_index("particle_id")
        cmp = ref[ref["layer"] == 9].set_index("particle_id").reindex(last.index)
        return np.std(np.angle(np.exp(1j * (last["phi"] - cmp["phi"]))))
    assert spread(thick) > 20 * spread(thin)


@pytest.mark.parametrize("pt, q", [(100.0, 1), (5.0, -1)])
def test_a_muon_is_one_track_from_pair_seeds_and_from_deepcore_seeds(pt, q):
    ev, sh = muon_event(pt=pt, q=q)
    net, _ = load_model(SHIPPED_MODEL)
    lists = {"pairs": jetcore_seeds(ev, DET), "deepcore": deepcore_seeds(ev, net, DET)[0]}
    for name, seeds in lists.items():
        assert len(seeds) >= 1, name
        tracks, hits = build_tracks(ev, sh, seeds)
        assert len(tracks) == 1, name
        t = tracks.iloc[0]
        assert t["particle_id"] == 1 and t["purity"] == 1.0 and t["q"] == q, name
        assert abs(t["pt"] / pt - 1) < 0.03, (name, t["pt"])
        assert abs(t["eta"] - 0.2) < 0.002, name
        # every strip hit of the muon and its clusters on pixel layers 3 and 4
        assert sorted(hits.loc[hits["kind"] == "strip", "index"]) == sorted(sh["hit"])
        assert set(ev.clusters.loc[hits.loc[hits["kind"] == "pixel", "index"], "layer"]) == {2, 3}
        assert t["chi2"] / t["ndf"] < 3, name


def test_a_seed_without_compatible_strip_hits_makes_no_track():
    ev, _ = muon_event()
    seeds = jetcore_seeds(ev, DET)
    # the strip hits of another muon, 0.05 rad away: the seed's pixel hits are there, its strip hits are not
    other = strip_hits(particles([(100.0, 0.2, 0.35, 1)]), 5)
    tracks, hits = build_tracks(ev, other, seeds)
    assert len(tracks) == 0 and len(hits) == 0
    # and with its own strip hits it is a track (the limits are not what stops it above)
    assert len(build_tracks(ev, strip_hits(ev.particles, 5), seeds)[0]) == 1
    # a seed pointing elsewhere finds neither
    away = seeds.assign(phi=seeds["phi"] + 0.2)
    assert len(build_tracks(ev, strip_hits(ev.particles, 5), away)[0]) == 0
    # no seeds, no strip hits: no track, empty tables
    assert len(build_tracks(ev, strip_hits(ev.particles, 5), seeds.iloc[:0])[0]) == 0
    assert len(build_tracks(ev, other.iloc[:0], seeds)[0]) == 0


def test_two_seeds_of_one_muon_give_one_track():
    ev, sh = muon_event()
    seeds = jetcore_seeds(ev, DET)
    twice = pd.concat([seeds, seeds.assign(x=seeds["x"] + 0.02)], ignore_index=True)
    tracks, _ = build_tracks(ev, sh, twice)
    assert len(tracks) == 1


@pytest.mark.parametrize("change, message", [
    (lambda s: s.drop(columns="inv_pt"), "no column inv_pt"),
    (lambda s: s.assign(eta=np.nan), "must be finite"),
    (lambda s: s.assign(inv_pt=-0.1), "must not be negative"),
])
def test_bad_seeds_are_one_clear_line(change, message):
    ev, sh = muon_event()
    with pytest.raises(DeepRecoError, match=message) as err:
        build_tracks(ev, sh, change(jetcore_seeds(ev, DET)))
    assert "\n" not in str(err.value)


def test_bad_limits_and_strip_tables_are_one_clear_line():
    ev, sh = muon_event()
    seeds = jetcore_seeds(ev, DET)
    for bad in (BuildConfig(max_candidates=0), BuildConfig(chi2_max=float("nan")), BuildConfig(max_holes=-1),
                BuildConfig(max_candidates=2.5)):
        with pytest.raises(DeepRecoError, match="track building: .* must be a positive number"):
            build_tracks(ev, sh, seeds, bad)
    with pytest.raises(DeepRecoError, match="the strip hits have no column zm"):
        build_tracks(ev, sh.drop(columns="zm"), seeds)
    with pytest.raises(DeepRecoError, match="strip hits: the particles have no column q"):
        strip_hits(ev.particles.drop(columns="q"), 1)
    with pytest.raises(DeepRecoError, match="must be finite"):
        strip_hits(ev.particles.assign(px=np.inf), 1)


def test_fitted_pt_errors_describe_the_spread_of_the_fitted_pt():
    n = 36
    rng = np.random.default_rng(4)
    eta, phi = rng.uniform(-1.0, 1.0, n), np.linspace(-np.pi, np.pi, n, endpoint=False)
    muons = [(10.0, e, p, 1 - 2 * (i % 2)) for i, (e, p) in enumerate(zip(eta, phi, strict=True))]
    jets = pd.DataFrame({"pt": 1500.0, "eta": eta, "phi": phi})
    ev = simulate(particles(muons), jets, np.zeros(3), np.random.default_rng(2), DET)
    tracks, _ = build_tracks(ev, strip_hits(ev.particles, 3), jetcore_seeds(ev, DET))
    assert sorted(tracks["particle_id"]) == list(range(1, n + 1))
    pull = (tracks["pt"] - 10.0) / tracks["sigma_pt"]
    assert 0.6 < pull.std() < 1.5 and abs(pull.mean()) < 0.6, (pull.mean(), pull.std())
    assert (tracks["q"].to_numpy() == 1 - 2 * ((tracks["particle_id"].to_numpy() - 1) % 2)).all()


def test_a_seed_with_a_wrong_curvature_still_finds_its_low_pt_track():
    # what DeepCore's network does with a 1.2 GeV track: 1/pT read as 0.1 and the direction of so straight a track
    ev, sh = muon_event(pt=1.2, q=1)
    seeds = jetcore_seeds(ev, DET)
    assert len(seeds) == 1 and abs(seeds["inv_pt"].iloc[0] - 1 / 1.2) < 0.1
    bend = 0.5 * DET.radii[1] * 0.299792458e-3 * DET.field_t  # psi - phi per unit q/pT on layer 2
    wrong = seeds.assign(inv_pt=0.1, phi=seeds["phi"] - bend * (0.1 - seeds["inv_pt"]))
    assert len(build_tracks(ev, sh, seeds, BuildConfig(seed_qpt_sigma=0.0))[0]) == 1  # the right seed: found
    assert len(build_tracks(ev, sh, wrong, BuildConfig(seed_qpt_sigma=0.0))[0]) == 0  # the wrong one: lost
    tracks, _ = build_tracks(ev, sh, wrong)  # the default start's extra 1/pT uncertainty (0.5 / GeV)
    assert len(tracks) == 1 and tracks["particle_id"].iloc[0] == 1 and abs(tracks["pt"].iloc[0] / 1.2 - 1) < 0.05
    with pytest.raises(DeepRecoError, match="seed_qpt_sigma must be a positive number"):
        build_tracks(ev, sh, seeds, BuildConfig(seed_qpt_sigma=-0.1))


def test_a_hit_off_the_track_is_dropped_by_the_final_fit():
    ev, sh = muon_event(pt=100.0, q=1)
    seeds = jetcore_seeds(ev, DET)
    moved = sh.copy()
    i = moved.index[moved["layer"] == 5][0]  # a mono layer of the inner barrel: one hit, r-phi measured
    moved.loc[i, "phi"] += 4.5 * np.sqrt(moved.loc[i, "var_phi"])  # inside the finder's gate, off the track
    kept, _ = build_tracks(ev, moved, seeds, BuildConfig(outlier_chi2=0.0))
    dropped, hits = build_tracks(ev, moved, seeds)  # the default: a hit adding more than 9 to chi2 goes
    assert len(kept) == len(dropped) == 1
    assert dropped["n_hits"].iloc[0] == kept["n_hits"].iloc[0] - 1
    assert i not in set(hits.loc[hits["kind"] == "strip", "index"])
    assert dropped["chi2"].iloc[0] < kept["chi2"].iloc[0] - 9
    # the untouched muon loses nothing
    assert build_tracks(ev, sh, seeds)[0]["n_hits"].iloc[0] == kept["n_hits"].iloc[0]

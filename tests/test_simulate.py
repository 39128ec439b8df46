"""The fast simulation: one muon through the barrel, neutrals, determinism, bad input, and real events."""

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepreco.errors import EventError
from deepreco.io import read_table, write_event
from deepreco.simulate import comparison_table, default_detector, simulate_event

SHARED_TRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trackml" / "train"


def gun(pt=2.0, eta=0.2, phi=0.3, q=-1, pdg=13, n=1, vertex=(0.0, 0.0, 0.0)) -> pd.DataFrame:
    """A hand-made particle table: ``n`` copies of one particle, ids 1..n."""
    return pd.DataFrame({
        "particle_id": np.arange(1, n + 1), "vx": vertex[0], "vy": vertex[1], "vz": vertex[2],
        "px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "q": q, "particle_type": pdg,
    })


def ideal(particles, **kw):
    return simulate_event(particles, seed=3, material=False, hit_efficiency=1.0, noise_fraction=0.0, **kw)


def test_muon_crosses_consecutive_barrel_layers_on_its_modules():
    det = default_detector()
    event = ideal(gun())
    hits, truth = event.hits, event.truth
    assert (truth["particle_id"] == 1).all() and event.particles["nhits"].iloc[0] == len(hits)
    layers = hits.drop_duplicates(["volume_id", "layer_id"])[["volume_id", "layer_id"]]
    barrel = [(8, 2), (8, 4), (8, 6), (8, 8), (13, 2), (13, 4), (13, 6), (13, 8), (17, 2), (17, 4)]
    assert sorted(map(tuple, layers.to_numpy())) == barrel  # every barrel layer, nothing else
    assert len(hits) <= 2 * len(barrel)  # overlaps add at most one hit a layer here
    index = det.module_index(hits["volume_id"], hits["layer_id"], hits["module_id"])
    true_local = det.to_local(truth[["tx", "ty", "tz"]].to_numpy(np.float64), index)
    assert np.abs(true_local[:, 2]).max() < 2e-4  # on the mid-plane (truth is float32: 1e-7 x 1000 mm)
    assert det.inside(true_local, index).all()
    hit_local = det.to_local(hits[["x", "y", "z"]].to_numpy(np.float64), index)
    assert np.abs(hit_local[:, 2]).max() < 1e-3  # float32 rounding of the written x, y, z
    assert det.inside(hit_local, index, tolerance=0.01).all()


def test_muon_hits_follow_a_helix_of_the_right_radius():
    pt, field = 2.0, 2.0
    event = ideal(gun(pt=pt), field_tesla=field)
    xy = event.truth[["tx", "ty"]].to_numpy(np.float64)
    # algebraic circle fit: x^2 + y^2 + D x + E y + F = 0
    a = np.column_stack([xy, np.ones(len(xy))])
    d, e, f = np.linalg.lstsq(a, -(xy**2).sum(axis=1), rcond=None)[0]
    radius = np.sqrt(d * d / 4 + e * e / 4 - f)
    expected = pt / (0.299792458 * field) * 1000.0
    assert radius == pytest.approx(expected, rel=1e-3)
    # a negative particle turns counter-clockwise seen from +z: the centre is to the left of its flight
    centre = np.array([-d / 2, -e / 2])
    direction = np.array([np.cos(0.3), np.sin(0.3)])
    assert direction[0] * centre[1] - direction[1] * centre[0] > 0
    # z grows linearly with the transverse arc length 2 R asin(r / 2R)
    t = event.truth.sort_values("tz")
    r = np.hypot(t["tx"], t["ty"]).to_numpy(np.float64)
    arc = 2 * expected * np.arcsin(r / (2 * expected))
    assert np.allclose(t["tz"].to_numpy(np.float64), arc * np.sinh(0.2), rtol=1e-4)


def test_neutral_particle_leaves_no_hit():
    event = ideal(gun(q=0, pdg=22, n=5))
    assert len(event.hits) == 0 and (event.particles["nhits"] == 0).all()


def test_same_seed_gives_byte_identical_files(tmp_path):
    particles = read_table(resources.files("deepreco") / "data" / "event000001001-particles.csv.gz", "particles")
    particles = particles.iloc[::10].reset_index(drop=True)
    a = simulate_event(particles, seed=11, event_id=7)
    b = simulate_event(particles, seed=11, event_id=7)
    c = simulate_event(particles, seed=12, event_id=7)
    pd.testing.assert_frame_equal(a.hits, b.hits)
    assert not a.hits.equals(c.hits)
    files_a = write_event(a, tmp_path / "a", format="csv")
    files_b = write_event(b, tmp_path / "b", format="csv")
    assert [f.read_bytes() for f in files_a] == [f.read_bytes() for f in files_b]
    assert {f.name.split("-")[1] for f in files_a} == {"hits.csv", "cells.csv", "particles.csv", "truth.csv"}
    assert a.truth["weight"].sum() == pytest.approx(1.0, rel=1e-5)
    noise = a.truth["particle_id"] == 0
    assert (a.truth.loc[noise, "weight"] == 0).all()
    assert a.cells["hit_id"].isin(a.hits["hit_id"]).all() and a.hits["hit_id"].isin(a.cells["hit_id"]).all()


@pytest.mark.parametrize("fault, message", [
    (lambda p: p.drop(columns=["pz", "q"]), "missing columns pz, q"),
    (lambda p: p.assign(px=[np.nan, 1.0, 1.0]), "NaN"),
    (lambda p: p.assign(q=[1, 2, -1]), "column q has 1 value(s) outside -1, 0, 1"),
])
def test_bad_particle_tables_raise_one_line_event_errors(fault, message):
    with pytest.raises(EventError, match=re.escape(message)) as info:
        simulate_event(fault(gun(n=3)))
    assert "\n" not in str(info.value)


def _real_comparison(hits_path, particles_path, seed):
    hits = read_table(hits_path, "hits")
    particles = read_table(particles_path, "particles")
    sim = simulate_event(particles, seed=seed)
    return comparison_table(hits, particles, sim).set_index("quantity")


@pytest.fixture(scope="module")
def table_1001():
    data = resources.files("deepreco") / "data"
    with resources.as_file(data / "event000001001-hits.csv.gz") as h, \
            resources.as_file(data / "event000001001-particles.csv.gz") as p:
        return _real_comparison(h, p, seed=1001)


@pytest.fixture(scope="module")
def table_1003():
    hits = SHARED_TRAIN / "event000001003-hits.csv.gz"
    if not hits.is_file():
        pytest.skip(f"real event 1003 is not at {SHARED_TRAIN} (the ../shared folder beside the project)")
    return _real_comparison(hits, SHARED_TRAIN / "event000001003-particles.csv.gz", seed=1003)


COUNT_CHECKS = ["total hits", *[f"hits in volume {v}" for v in (7, 8, 9, 12, 13, 14, 16, 17, 18)], "noise fraction"]
NHITS_CHECK = "particles with |nhits_sim - nhits_real| <= 1"


@pytest.mark.parametrize("event", ["table_1001", "table_1003"])
def test_real_event_hit_counts_and_noise_match(event, request):
    table = request.getfixturevalue(event)
    failed = table.loc[COUNT_CHECKS][~table.loc[COUNT_CHECKS, "passed"]]
    assert failed.empty, f"\n{failed}"
    # per particle: the present simulation reaches about 0.77 (see the xfail test below); guard against worse
    assert table.loc[NHITS_CHECK, "simulated"] >= 0.75


@pytest.mark.xfail(strict=True, reason="about 77 % of particles are within one hit of their real nhits, not 80 %: "
                   "two simulations of the same list with different seeds agree for only 82 % (scattering moves "
                   "overlap hits, 1 % inefficiency, random ends), primaries above 0.3 GeV are at that ceiling, and "
                   "material secondaries are not (0.63 to 0.71 against 0.82 to 0.87): the real ones "
                   "end early at random, and the lists give neither their species nor their hits")
@pytest.mark.parametrize("event", ["table_1001", "table_1003"])
def test_real_event_nhits_per_particle_within_one(event, request):
    table = request.getfixturevalue(event)
    assert table.loc[NHITS_CHECK, "simulated"] >= 0.80


def test_no_hit_behind_the_vertex_on_the_innermost_layer():
    # A helix from a vertex off z = 0 meets the plane of a module on the far side of the 32 mm layer if one
    # extends it backward; such "phantom" hits (phi + pi) were made before the check against the crossing.
    from deepreco.generate import particle_gun

    particles = particle_gun(n=600, pdg=[211, -211], pt=(0.1, 2.0), vertex_sigma=(0.015, 55.0), seed=4)
    event = simulate_event(particles, seed=4, noise_fraction=0)
    hits = event.hits.merge(event.truth[["hit_id", "particle_id", "tpx", "tpy"]])
    inner = hits[(hits["volume_id"] == 8) & (hits["layer_id"] == 2)]
    assert len(inner) > 100
    # every hit lies ahead of the particle: its momentum points away from the beam line where it crosses
    outward = inner["x"] * inner["tpx"] + inner["y"] * inner["tpy"]
    assert (outward > 0).all()


def test_particle_made_in_a_sensor_leaves_no_hit_on_it():
    # a secondary starts where its parent interacted, often inside a module: that module's hit is the parent's
    det = default_detector()
    rows = np.flatnonzero((det.ids[:, 0] == 8) & (det.ids[:, 1] == 4))
    row = int(rows[np.argmin(np.hypot(det.centres[rows, 0], det.centres[rows, 1]))])  # inside the layer's mean radius
    centre = det.centres[row]
    phi = float(np.arctan2(centre[1], centre[0]))
    particle = gun(pt=5.0, eta=0.0, phi=phi, vertex=tuple(centre))
    event = ideal(particle)
    modules = set(map(tuple, event.hits[["volume_id", "layer_id", "module_id"]].to_numpy()))
    assert tuple(det.ids[row]) not in modules
    assert {(8, 6), (8, 8)} <= set(map(tuple, event.hits[["volume_id", "layer_id"]].to_numpy()))


def test_no_random_interactions_for_a_list_that_records_them():
    # TrackML ids carry the lineage: the list's interactions are its particles' listed daughters
    particles = read_table(resources.files("deepreco") / "data" / "event000001001-particles.csv.gz", "particles")
    particles = particles.iloc[::20].reset_index(drop=True)
    a = simulate_event(particles, seed=5, noise_fraction=0.0, interaction_scale=1.0)
    b = simulate_event(particles, seed=5, noise_fraction=0.0, interaction_scale=5.0)
    pd.testing.assert_frame_equal(a.particles, b.particles)
    plain = particles.assign(particle_id=np.arange(1, len(particles) + 1))  # same particles, no lineage
    c = simulate_event(plain, seed=5, noise_fraction=0.0, interaction_scale=1.0)
    d = simulate_event(plain, seed=5, noise_fraction=0.0, interaction_scale=5.0)
    assert d.particles["nhits"].sum() < c.particles["nhits"].sum()
    # for studies: random early ends for the list's material secondaries only
    e = simulate_event(particles, seed=5, noise_fraction=0.0, secondary_interaction_scale=5.0)
    secondary = (particles["particle_id"].to_numpy() >> 24) & 0xFFF > 0
    assert e.particles["nhits"][secondary].sum() < a.particles["nhits"][secondary].sum()
    with pytest.raises(EventError, match="secondary_interaction_scale must be a number >= 0"):
        simulate_event(particles, secondary_interaction_scale=-1.0)


def test_grazing_crossing_of_the_innermost_layer_leaves_no_hit():
    # the innermost barrel (r = 32 mm) reaches |z| = 490 mm; a track from the origin meets it at |cot theta| = z / r
    def inner_hits(cot):
        event = ideal(gun(pt=5.0, eta=float(np.arcsinh(cot)), phi=0.5))
        return int(((event.hits["volume_id"] == 8) & (event.hits["layer_id"] == 2)).sum())

    assert inner_hits(8.0) >= 1  # 82.9 degrees from the module normal (cos 0.124): a hit
    assert inner_hits(12.0) == 0  # 85.2 degrees (cos 0.083 < MIN_INCIDENCE_COS): crossed, but no hit


def test_a_particle_stops_at_the_point_of_its_helix_farthest_from_the_beam_line():
    from deepreco.simulate.propagate import C_LIGHT, _path_to_farthest, helix_step

    rng = np.random.default_rng(5)
    n = 200
    x = np.column_stack([rng.uniform(-300, 300, (n, 2)), rng.uniform(-100, 100, n)])
    t = rng.normal(size=(n, 3))
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    w = -rng.choice([-1.0, 1.0], n) * C_LIGHT * 2.0 / rng.uniform(0.2, 2.0, n)
    s = _path_to_farthest(x, t, w)
    # brute force: the radius along one full turn of each helix peaks at s
    grid = np.linspace(0.0, 1.0, 4001)[None, :] * (2 * np.pi / np.abs(w))[:, None]
    pos, _ = helix_step(x[:, None, :], t[:, None, :], w[:, None], grid)
    best = grid[np.arange(n), np.argmax(np.hypot(pos[..., 0], pos[..., 1]), axis=1)]
    turn = np.abs(w) * np.abs(s - best)
    assert np.all(np.minimum(turn, 2 * np.pi - turn) < 2e-3)
    # from the beam line, the farthest point is half a turn away
    origin = _path_to_farthest(np.zeros((n, 3)), t, w)
    np.testing.assert_allclose(np.abs(w) * origin, np.pi, rtol=1e-9)
    assert np.isinf(_path_to_farthest(x[:1], t[:1], np.zeros(1)))  # a straight track has none


def test_a_particle_is_followed_while_its_pt_stays_above_threshold():
    # energy loss and scattering take a 150.5 MeV muon under the 150 MeV threshold within a few layers (the
    # real events: 2.9 hits at pT 0.150-0.155 GeV against 8.2 at 0.16-0.17)
    def mean_hits(pt):
        event = simulate_event(gun(pt=pt, eta=0.3, n=40), seed=2, noise_fraction=0.0, hit_efficiency=1.0)
        return event.particles["nhits"].mean()

    assert mean_hits(0.1505) < 5.0 < 7.0 < mean_hits(0.17)


def test_first_pass_keeps_each_layer_of_a_particle_from_its_first_crossing_only():
    from deepreco.simulate.fastsim import _first_pass

    particle = np.array([0, 0, 0, 0, 1, 1, 1])
    layer = np.array([3, 3, 4, 3, 3, 4, 3])
    step = np.array([0, 0, 1, 2, 5, 6, 7])
    assert _first_pass(particle, layer, step).tolist() == [True, True, True, False, True, True, False]


def test_secondary_made_in_a_layers_material_leaves_no_hit_on_that_layer():
    # a TrackML (barcode) list: a primary and a secondary made at r = 35.5 mm, where the innermost pixel layer's
    # material lies (modules at r = 32 mm), heading inwards past the layer and back out
    primary = (1 << 52) | (1 << 36)
    table = gun(pt=0.6, eta=0.1, phi=1.0, n=2, vertex=(0.0, 0.0, 0.0))
    table["particle_id"] = [primary, (2 << 52) | (1 << 36) | (1 << 24) | 1]
    table.loc[1, ["vx", "vy", "vz"]] = (35.5, 0.0, 10.0)
    table.loc[1, ["px", "py", "pz"]] = (-0.3, 0.5, 0.05)
    for lineage in (True, False):
        particles = table if lineage else table.assign(particle_id=[1, 2])
        event = ideal(particles)
        hits = event.hits.merge(event.truth[["hit_id", "particle_id", "tpx", "tpy"]])
        mine = hits[hits["particle_id"] == particles["particle_id"].iloc[1]]
        inner = mine[(mine["volume_id"] == 8) & (mine["layer_id"] == 2)]
        assert ((mine["volume_id"] == 8) & (mine["layer_id"] == 4)).any()  # it flies on outwards
        if lineage:
            assert inner.empty  # made by the layer's material: no hit on that layer
        else:
            # a generator's particle (no lineage) made there hits the layer, on its first pass only (inwards)
            assert len(inner) >= 1
            assert (inner["x"] * inner["tpx"] + inner["y"] * inner["tpy"] < 0).all()


def test_a_disk_ring_gives_at_most_three_hits_near_its_inner_edge():
    # near r = 31 mm the 40 pixel modules of the innermost ring overlap three to four deep; a ring is searched
    # as 40 bins in phi (the nearest module and its two neighbours), as the real events show
    phi = np.linspace(0.0, 2.0 * np.pi, 720, endpoint=False)
    eta = float(np.arcsinh(600.0 / 31.0))
    table = pd.DataFrame({"particle_id": np.arange(1, phi.size + 1), "vx": 0.0, "vy": 0.0, "vz": 0.0,
                          "px": 20.0 * np.cos(phi), "py": 20.0 * np.sin(phi), "pz": 20.0 * np.sinh(eta), "q": -1,
                          "particle_type": 13})
    event = ideal(table)
    hits = event.hits.merge(event.truth[["hit_id", "particle_id"]])
    first_disk = hits[(hits["volume_id"] == 9) & (hits["layer_id"] == 2)]
    per_particle = first_disk.groupby("particle_id").size()
    assert per_particle.max() == 3 and per_particle.min() >= 2

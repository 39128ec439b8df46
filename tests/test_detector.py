"""Tests of deepreco.detector on the shipped TrackML detector, hand-made modules and a real event."""

import gzip
import re
import time
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from deepreco.detector import COLUMNS, Detector
from deepreco.errors import EventError, FormatError, MissingFileError

# Real event 1001, as shipped in the package (an unchanged copy of ../shared/data/trackml/train's file).
EVENT_1001 = resources.files("deepreco") / "data" / "event000001001-hits.csv.gz"


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector.load()


@pytest.fixture(scope="module")
def hits_1001(det):
    """The real hits of event 1001 with their named module's row, local coordinates and the print rounding."""
    with resources.as_file(EVENT_1001) as path:
        hits = pd.read_csv(path)
    return hits, det.module_index(hits["volume_id"], hits["layer_id"], hits["module_id"])


def trapezoid_table(**over) -> pd.DataFrame:
    """One hand-made trapezoid module: minhu 10 at v = -30, maxhu 20 at v = +30, t = 0.2, u,v,w = x,y,z."""
    row = dict(volume_id=14, layer_id=2, module_id=1, cx=100.0, cy=0.0, cz=0.0,
               rot_xu=1.0, rot_xv=0.0, rot_xw=0.0, rot_yu=0.0, rot_yv=1.0, rot_yw=0.0,
               rot_zu=0.0, rot_zv=0.0, rot_zw=1.0, module_t=0.2, module_minhu=10.0, module_maxhu=20.0,
               module_hv=30.0, pitch_u=0.1, pitch_v=1.5)
    row.update(over)
    return pd.DataFrame([row])


def print_rounding(x: np.ndarray) -> np.ndarray:
    """Largest error of a number printed with 6 significant digits, as the TrackML CSV files print them."""
    a = np.abs(x)
    exponent = np.floor(np.log10(np.where(a > 0, a, 1.0)))
    return np.where(a > 0, 0.5 * 10.0 ** (exponent - 5), 0.0)


# ---------------------------------------------------------------------------------------------- loading


def test_shipped_detector_shapes_and_rotations(det):
    n = 18_728
    assert len(det) == n and len(det.modules) == n
    assert det.ids.shape == (n, 3) and det.centres.shape == (n, 3) and det.rotations.shape == (n, 3, 3)
    assert det.thickness.shape == (n,) and det.half_widths.shape == (n, 3) and det.pitch.shape == (n, 2)
    assert list(det.modules.index) == list(range(n))
    assert np.all(np.diff(det._keys) > 0)  # sorted and unique, which module_index relies on
    assert dict(det.modules["volume_id"].value_counts()) == {
        7: 756, 8: 2492, 9: 756, 12: 1020, 13: 5796, 14: 1020, 16: 588, 17: 5712, 18: 588}
    r = det.rotations
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    # the file's own rotations are orthonormal only to their 6 printed digits; the cleaned ones stay that close
    raw = det.modules[[f"rot_{g}{l}" for g in "xyz" for l in "uvw"]].to_numpy().reshape(n, 3, 3)
    assert np.abs(raw @ raw.transpose(0, 2, 1) - np.eye(3)).max() < 5e-6
    assert np.abs(r - raw).max() < 1e-6


def test_load_path_equals_default(det, tmp_path):
    packed = tmp_path / "detectors.csv.gz"
    packed.write_bytes((resources.files("deepreco") / "data" / "trackml-detectors.csv.gz").read_bytes())
    np.testing.assert_array_equal(Detector.load(packed).centres, det.centres)
    plain = tmp_path / "detectors.csv"
    plain.write_bytes(gzip.decompress(packed.read_bytes()))
    assert Detector.load(plain).source == str(plain)
    np.testing.assert_array_equal(Detector.load(plain).rotations, det.rotations)


# ------------------------------------------------------------------------------------------- addressing


def test_module_index(det):
    rows = np.array([0, 1, 5000, len(det) - 1])
    v, l, m = det.ids[rows].T
    np.testing.assert_array_equal(det.module_index(v, l, m), rows)
    assert det.module_index(7, 2, 1) == 0 and np.ndim(det.module_index(7, 2, 1)) == 0
    assert det.module_index(18, 12, 98) == len(det) - 1
    np.testing.assert_array_equal(det.module_index(8, 2, [1, 2]), det.module_index([8, 8], [2, 2], [1, 2]))
    with pytest.raises(EventError, match=r"2 of 3 .* the first is \(99, 2, 1\)"):
        det.module_index([99, 8, 8], [2, 3, 2], [1, 1, 1])
    with pytest.raises(EventError, match="1 of 1"):
        det.module_index(8, 2, -1)
    with pytest.raises(EventError, match="integers"):
        det.module_index(8.5, 2, 1)


def test_bad_module_rows_are_refused(det):
    with pytest.raises(EventError, match="-1 means"):
        det.to_local(np.zeros((2, 3)), [0, -1])
    with pytest.raises(EventError, match="outside"):
        det.to_global(np.zeros(3), len(det))
    with pytest.raises(EventError, match="shape"):
        det.to_local(np.zeros((4, 2)), 0)


# ------------------------------------------------------------------------------------------- transforms


def test_transform_round_trips(det):
    rng = np.random.default_rng(7)
    idx = rng.integers(0, len(det), 5000)
    pts = rng.uniform(-3000, 3000, (5000, 3))
    local = det.to_local(pts, idx)
    np.testing.assert_allclose(det.to_global(local, idx), pts, rtol=1e-9, atol=1e-9 * 3000)
    loc = rng.uniform(-50, 50, (5000, 3))
    np.testing.assert_allclose(det.to_local(det.to_global(loc, idx), idx), loc, rtol=1e-9, atol=1e-9 * 50)
    # the centre is the local origin, and local axes are the columns of R
    np.testing.assert_allclose(det.to_local(det.centres[idx], idx), 0.0, atol=1e-12)
    np.testing.assert_allclose(det.to_global(np.array([0.0, 0.0, 1.0]), 123) - det.centres[123],
                               det.rotations[123][:, 2], atol=1e-15)
    # one module for many points broadcasts, and leading dimensions are kept
    assert det.to_local(pts.reshape(50, 100, 3), 3).shape == (50, 100, 3)


# -------------------------------------------------------------------------------------------- bounds


def test_trapezoid_bounds_hand_made():
    one = Detector(trapezoid_table(), source="hand-made")
    assert one.module_index(14, 2, 1) == 0
    # (u, v, w, expected); hu(v) = 15 + v / 6: 10 at v = -30, 15 at v = 0, 20 at v = +30
    cases = [(0, 0, 0, True), (14.9, 0, 0, True), (-15.1, 0, 0, False),
             (10.1, -29, 0, True), (10.3, -29, 0, False),  # narrow end at v = -hv ...
             (19.8, 29, 0, True), (19.8, -29, 0, False),   # ... wide end at v = +hv
             (0, 29.9, 0, True), (0, -30.1, 0, False),
             (0, 0, 0.099, True), (0, 0, -0.101, False)]
    local = np.array([c[:3] for c in cases], float)
    np.testing.assert_array_equal(one.inside(local, 0), [c[3] for c in cases])
    # the same through the global frame: the module sits at x = 100
    np.testing.assert_array_equal(one.inside(one.to_local(local + [100, 0, 0], 0), 0), [c[3] for c in cases])
    # a tolerance widens u, v and w alike, and past the wide end the edge goes straight on (hu = 20)
    widened = np.array([[-15.1, 0, 0], [19.9, 30.1, 0], [0, 0, 0.2], [20.3, 30.1, 0]])
    np.testing.assert_array_equal(one.inside(widened, 0, tolerance=0.2), [True, True, True, False])


def test_real_trapezoid_corners(det):
    row = det.module_index(14, 2, 1)
    minhu, maxhu, hv = det.half_widths[row]
    assert minhu < maxhu
    corners = np.array([[-minhu, -hv, 0], [minhu, -hv, 0], [-maxhu, hv, 0], [maxhu, hv, 0]])
    assert det.inside(corners * 0.999, row).all()
    assert not det.inside(corners * [1.01, 1, 1], row).any()
    assert not det.inside(np.array([[maxhu * 0.999, -hv * 0.999, 0]]), row).any()  # wide u at the narrow end


# --------------------------------------------------------------------------------------------- cells


def test_cells_convention(det):
    pixel, strip_ec = det.module_index(8, 2, 1), det.module_index(16, 2, 1)
    np.testing.assert_array_equal(det.n_cells[pixel], [336, 1280])
    np.testing.assert_array_equal(det.n_cells[det.module_index(13, 2, 1)], [600, 90])
    np.testing.assert_array_equal(det.n_cells[det.module_index(17, 2, 1)], [400, 10])
    # every module has a whole number of cells on its bounding box
    box = np.stack([det.half_widths[:, :2].max(axis=1), det.half_widths[:, 2]], axis=1)
    np.testing.assert_allclose(det.n_cells * det.pitch, 2 * box, rtol=1e-9)
    # cell (0, 0) has its centre half a pitch inside the low-u, low-v corner of the bounding box
    pu, pv = det.pitch[pixel]
    np.testing.assert_allclose(det.cells_to_local(0, 0, pixel), [-8.4 + pu / 2, -36 + pv / 2, 0])
    assert det.local_to_cells(np.zeros(2), pixel) == (168, 640)
    # a trapezoid's grid is its bounding box: the same u gives the same ch0 at both ends
    minhu, maxhu, hv = det.half_widths[strip_ec]
    ends = np.array([[-minhu + 0.01, -hv + 0.01], [-minhu + 0.01, hv - 0.01]])
    ch0, ch1 = det.local_to_cells(ends, strip_ec)
    assert ch0[0] == ch0[1] == int((maxhu - minhu) / det.pitch[strip_ec, 0])
    np.testing.assert_array_equal(ch1, [0, det.n_cells[strip_ec, 1] - 1])
    # round trip channels -> centres -> channels over random modules and cells
    rng = np.random.default_rng(3)
    idx = rng.integers(0, len(det), 20000)
    c0, c1 = (rng.integers(0, det.n_cells[idx, k]) for k in range(2))
    back = det.local_to_cells(det.cells_to_local(c0, c1, idx), idx)
    np.testing.assert_array_equal(back[0], c0)
    np.testing.assert_array_equal(back[1], c1)


# --------------------------------------------------------------------------------------------- layers


def test_layers_table(det):
    lay = det.layers
    assert len(lay) == 48 and lay["n_modules"].sum() == len(det)
    assert set(lay["kind"]) == {"barrel", "endcap"}
    assert set(lay.loc[lay["kind"] == "barrel", "volume_id"]) == {8, 13, 17}
    barrel = lay[lay["kind"] == "barrel"].set_index("volume_id")
    np.testing.assert_allclose(barrel.loc[8, "r_mean"], [32, 72, 116, 172], atol=0.5)
    np.testing.assert_allclose(barrel.loc[13, "r_mean"], [260, 360, 500, 660], atol=0.5)
    np.testing.assert_allclose(barrel.loc[17, "r_mean"], [820, 1020], atol=0.5)
    np.testing.assert_allclose(barrel["position"], barrel["r_mean"])
    assert (barrel["r_max"] - barrel["r_min"] < 4).all()  # staggered modules, a few mm apart in r
    endcap = lay[lay["kind"] == "endcap"]
    np.testing.assert_allclose(endcap["position"], endcap["z_mean"])
    assert (endcap["z_max"] - endcap["z_min"] < 12).all()
    # endcaps are mirror images: volume 7 of 9, 12 of 14, 16 of 18
    for neg, pos in [(7, 9), (12, 14), (16, 18)]:
        zn = np.sort(endcap.loc[endcap["volume_id"] == neg, "z_mean"].to_numpy())
        zp = np.sort(endcap.loc[endcap["volume_id"] == pos, "z_mean"].to_numpy())
        np.testing.assert_allclose(zn, -zp[::-1], atol=0.5)
    np.testing.assert_allclose(endcap.loc[endcap["volume_id"] == 9, "z_mean"],
                               [600, 700, 820, 960, 1100, 1300, 1500], atol=0.5)


# ----------------------------------------------------------------------------------------- find_module


def test_find_module_on_centres_and_off_modules(det):
    np.testing.assert_array_equal(det.find_module(det.centres, tolerance=0.0), np.arange(len(det)))
    off = np.array([[0.0, 0.0, 0.0], [5000.0, 0.0, 0.0], [50.0, 0.0, 0.0], [0.0, 0.0, 4000.0]])
    np.testing.assert_array_equal(det.find_module(off), -1)
    # 1 mm off a pixel module's mid-plane is off it (t = 0.15 mm), within tolerance 1 mm is on it
    row = det.module_index(8, 2, 1)
    lifted = det.to_global(np.array([[1.0, 2.0, 1.0]]), row)
    assert det.find_module(lifted, tolerance=0.0)[0] == -1
    assert det.find_module(lifted, tolerance=1.0)[0] == row
    assert det.find_module(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(EventError, match="NaN"):
        det.find_module(np.array([[np.nan, 0.0, 0.0]]))


# ------------------------------------------------------------------------------------------- real hits


def test_real_hits_lie_on_their_modules(det, hits_1001):
    """Every hit of event 1001 sits on the mid-plane of the module it names, inside its bounds.

    The files print every number with 6 significant digits, so a hit and a module centre are each known
    to 0.5e-5 relative per coordinate (up to 0.005 mm at |y| ~ 1000 mm), the rotations to ~1e-6; the
    tolerance on w is that rounding carried through the transform, per hit. It is 0.010 mm at most, far
    below t/2 = 0.075 to 0.175 mm: the hits are not spread through the thickness but lie on w = 0.
    """
    hits, idx = hits_1001
    assert len(hits) == 93_680
    xyz = hits[["x", "y", "z"]].to_numpy()
    local = det.to_local(xyz, idx)
    u, v, w = local.T
    rot_w = det.rotations[idx][:, :, 2]
    rounding = (np.abs(rot_w) * (print_rounding(xyz) + print_rounding(det.centres[idx]))).sum(axis=1) \
        + 3e-6 * np.hypot(u, v)
    assert rounding.max() < 0.011
    assert np.all(np.abs(w) <= 0.5 * det.thickness[idx] + rounding)
    assert np.all(np.abs(w) <= rounding)  # on the mid-plane: measured max |w| = 0.0087 mm (0.95 of the bound)
    # v: never beyond the centre of the outermost cell (measured: |v| <= hv - 0.489 pitch_v)
    minhu, maxhu, hv = det.half_widths[idx].T
    pu, pv = det.pitch[idx].T
    assert np.all(np.abs(v) <= hv - 0.45 * pv + rounding)
    # u: rectangles hold all their hits; on a trapezoid a cluster can be centred on a cell of the
    # bounding-box grid that the slanted edge cuts: a cell's centre is up to slope * pitch_v / 2 past the
    # edge, and the cluster a pitch more (measured: at most 0.32 mm = 2.67 pitch_u, 11 hits in all)
    hu = minhu + (maxhu - minhu) * (v + hv) / (2 * hv)
    excess = np.abs(u) - hu
    slope = np.abs(maxhu - minhu) / (2 * hv)
    assert np.all(excess[minhu == maxhu] <= 0)
    assert np.all(excess <= pu + slope * pv / 2)
    assert 0 < np.count_nonzero(excess > 0) <= 20
    assert det.inside(local, idx, tolerance=0.35).all()


def test_real_hits_follow_the_bounding_box_cell_grid(det, hits_1001):
    """On the endcap trapezoids, u measured from -hu_box lands on the half-pitch lattice of cell centres and
    two-cell centroids; measured from the slanted edge -hu(v) it does not. This is the evidence for the
    ACTS bounding-box convention of local_to_cells (measured: 94 % against 12 %; chance would be 8 %)."""
    hits, idx = hits_1001
    trap = hits["volume_id"].isin([12, 14, 16, 18]).to_numpy()
    idx = idx[trap]
    u, v, _ = det.to_local(hits.loc[trap, ["x", "y", "z"]].to_numpy(), idx).T
    minhu, maxhu, hv = det.half_widths[idx].T
    half_pitch = det.pitch[idx, 0] / 2

    def on_lattice(d):
        q = d / half_pitch
        return np.mean(np.abs(q - np.round(q)) < 0.04)

    assert on_lattice(u + np.maximum(minhu, maxhu)) > 0.9
    assert on_lattice(u + minhu + (maxhu - minhu) * (v + hv) / (2 * hv)) < 0.2


def test_find_module_on_real_hits(det, hits_1001):
    hits, idx = hits_1001
    xyz = hits[["x", "y", "z"]].to_numpy()
    det.find_module(xyz[:10])  # build the trees outside the timing
    start = time.perf_counter()
    found = det.find_module(xyz)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0  # measured ~0.3 s for the 93,680 hits
    # at the default 0.5 mm tolerance every hit is given the module it names: 100 %
    np.testing.assert_array_equal(found, idx)
    # with no tolerance, exactly the 11 cluster centroids outside their trapezoid are lost, and no hit is
    # ever given a wrong module
    strict = det.find_module(xyz, tolerance=0.0)
    inside = det.inside(det.to_local(xyz, idx), idx)
    np.testing.assert_array_equal(strict == idx, inside)
    assert np.all(strict[~inside] == -1)
    assert np.mean(strict == idx) > 0.999


# ------------------------------------------------------------------------------------------- bad input


def test_truncated_gz_is_a_format_error(det, tmp_path):
    data = (resources.files("deepreco") / "data" / "trackml-detectors.csv.gz").read_bytes()
    cut = tmp_path / "cut-detectors.csv.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"cut-detectors\.csv\.gz: truncated"):
        Detector.load(cut)


def test_missing_column_is_a_format_error(tmp_path):
    table = trapezoid_table().drop(columns=["pitch_v"])
    path = tmp_path / "no-pitch.csv"
    table.to_csv(path, index=False)
    with pytest.raises(FormatError, match=r"no-pitch\.csv: missing column pitch_v$"):
        Detector.load(path)


def test_other_bad_files(tmp_path):
    with pytest.raises(MissingFileError, match="nowhere.csv: no such"):
        Detector.load(tmp_path / "nowhere.csv")
    table = trapezoid_table()
    cases = {  # file name: (content, a fragment the message must hold)
        "empty.csv": ("", "empty file"),
        "nan.csv": (trapezoid_table(cx=np.nan).to_csv(index=False), "column cx has an empty value"),
        "cutline.csv": (table.to_csv(index=False)[:-12], "cut short"),
        "twice.csv": (pd.concat([table] * 2).to_csv(index=False), "(14, 2, 1) appears more than once"),
        "skew.csv": (trapezoid_table(rot_xv=0.5).to_csv(index=False), "not a proper rotation"),
        "flat.csv": (trapezoid_table(module_hv=0.0).to_csv(index=False), "module_hv must be positive"),
        "word.csv": (trapezoid_table(module_id="abc").to_csv(index=False), "invalid value 'abc'"),
        "text.csv.gz": ("volume_id,layer_id\n", "corrupt"),  # not gzip at all
    }
    for name, (text, fragment) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(FormatError, match="^" + re.escape(f"{path}: ")) as info:
            Detector.load(path)
        assert fragment in str(info.value) and "\n" not in str(info.value)
    assert len(COLUMNS) == 21

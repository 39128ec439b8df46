"""The real TrackML detector: 18,728 planar silicon modules, their frames, bounds, cells and layers.

Each module is a thin slab with its own right-handed local frame (u, v, w): u and v span the sensor plane,
w is its normal, and the origin is the module centre ``c``. The detector file gives the rotation ``R`` whose
rows are the global axes x, y, z and whose columns are u, v, w, so

    global = R @ local + c        local = R.T @ (global - c)

The sensor is the trapezoid |v| <= hv, |u| <= hu(v) with hu(v) = minhu + (maxhu - minhu) (v + hv) / (2 hv)
(``minhu`` is the half-width at v = -hv, ``maxhu`` at v = +hv; both are equal for rectangles), and the slab
is |w| <= t/2. Everything is vectorised over arrays of points and module row indices: a module is addressed
by a dense row index 0..N-1 into :attr:`Detector.modules`, obtained from its (volume_id, layer_id,
module_id) with :meth:`Detector.module_index`.

Cells follow the convention of the ACTS digitisation that produced the TrackML data
(``Acts::CartesianSegmentation``): the readout grid covers the module's *bounding box*, not the trapezoid,
with channel 0 at its low-u, low-v corner:

    ch0 = floor((u + hu_box) / pitch_u),  ch1 = floor((v + hv) / pitch_v),  hu_box = max(minhu, maxhu)

so a trapezoid's grid has cells that lie partly or wholly outside the sensor, and channel numbers of the
same strip do not depend on v. The real hits agree: on the endcap trapezoids their u, measured from
-hu_box, sits on the half-pitch lattice of cell centres and cluster centroids (> 90 % of the hits of event
1001), while measured from the slanted edge -hu(v) it does not (4 % of short-strip hits).

>>> from deepreco.detector import Detector
>>> from deepreco.io import example_event
>>> detector = Detector.load()                               # the TrackML detector shipped with deepreco
>>> len(detector.modules)
18728
>>> hits = example_event().hits                              # real event 1001: its hits lie on its modules
>>> rows = detector.find_module(hits[["x", "y", "z"]].to_numpy()[:3])
>>> detector.modules.iloc[rows][["volume_id", "layer_id", "module_id"]].to_numpy().tolist()
[[7, 2, 1], [7, 2, 1], [7, 2, 1]]
"""

from __future__ import annotations

import zlib
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .errors import EventError, FormatError, MissingFileError

__all__ = ["BARREL_VOLUMES", "COLUMNS", "Detector"]

ID_COLUMNS = ("volume_id", "layer_id", "module_id")
ROTATION_COLUMNS = tuple(f"rot_{g}{l}" for g in "xyz" for l in "uvw")  # row-major: R[g, l]
FLOAT_COLUMNS = ("cx", "cy", "cz", *ROTATION_COLUMNS, "module_t", "module_minhu", "module_maxhu",
                 "module_hv", "pitch_u", "pitch_v")
COLUMNS = ID_COLUMNS + FLOAT_COLUMNS
BARREL_VOLUMES = frozenset({8, 13, 17})  # pixel, short-strip and long-strip barrels; the others are endcaps

# The file prints the rotations with 6 significant digits, so R @ R.T misses the identity by ~1e-6; anything
# far beyond that is not a rotation at all.
_ROTATION_TOLERANCE = 1e-4
_ID_BITS = 20  # each id must fit 20 bits so that (volume, layer, module) packs into one int64 key
_DEFAULT_FILE = "trackml-detectors.csv.gz"


def _pack(volume_id, layer_id, module_id) -> np.ndarray:
    return (np.asarray(volume_id, np.int64) << (2 * _ID_BITS)) | (np.asarray(layer_id, np.int64) << _ID_BITS) \
        | np.asarray(module_id, np.int64)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Detector:
    """The module table of a TrackML detector and its geometry as dense arrays, one row per module.

    Rows are sorted by (volume_id, layer_id, module_id); the row number is the module's index everywhere
    in this class. The arrays are float64 copies of the table, except :attr:`rotations`, which are the
    file's rotations re-orthonormalised (nearest rotation matrix, by SVD): the file rounds them to 6
    digits, and an exactly orthonormal R makes ``to_global(to_local(p))`` exact to rounding (1e-15)
    instead of 1e-6, while moving no point of the shipped modules by more than 5e-5 mm.

    Attributes: ``modules`` (DataFrame, the table as read, sorted, index = row), ``source`` (where it came
    from), ``ids`` (N, 3) int64, ``centres`` (N, 3), ``rotations`` (N, 3, 3), ``thickness`` (N,),
    ``half_widths`` (N, 3) = (minhu, maxhu, hv), ``pitch`` (N, 2) = (pitch_u, pitch_v), ``n_cells`` (N, 2).
    """

    def __init__(self, modules: pd.DataFrame, source: str = "<detector table>"):
        self.source = str(source)
        table = self._validated(modules, self.source)
        self.modules = table
        n = len(table)
        self.ids = table[list(ID_COLUMNS)].to_numpy(np.int64)
        self._keys = _pack(self.ids[:, 0], self.ids[:, 1], self.ids[:, 2])  # sorted, unique
        self.centres = table[["cx", "cy", "cz"]].to_numpy(np.float64)
        raw = table[list(ROTATION_COLUMNS)].to_numpy(np.float64).reshape(n, 3, 3)
        u, _, vt = np.linalg.svd(raw)
        self.rotations = u @ vt
        self.thickness = table["module_t"].to_numpy(np.float64)
        self.half_widths = table[["module_minhu", "module_maxhu", "module_hv"]].to_numpy(np.float64)
        self.pitch = table[["pitch_u", "pitch_v"]].to_numpy(np.float64)
        box = np.stack([self.half_widths[:, :2].max(axis=1), self.half_widths[:, 2]], axis=1)
        self._box = box  # (hu_box, hv): the half-sizes of the bounding box that the cell grid covers
        self.n_cells = np.rint(2.0 * box / self.pitch).astype(np.int64)
        self._layers: pd.DataFrame | None = None
        self._groups: list[tuple[cKDTree, np.ndarray, np.ndarray]] | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def load(cls, path: str | Path | None = None) -> Detector:
        """Read a detector CSV (plain or gzipped); the default is the TrackML detector shipped with deepreco.

        Any fault of the file (missing, truncated, malformed, a missing column, a NaN, a duplicated module,
        a non-rotation) raises :class:`FormatError` with a one-line message that starts with the file name.
        """
        if path is None:
            resource = resources.files("deepreco") / "data" / _DEFAULT_FILE
            with resources.as_file(resource) as real:
                return cls._read(Path(real))
        return cls._read(Path(path))

    @classmethod
    def _read(cls, path: Path) -> Detector:
        if not path.is_file():
            raise MissingFileError(f"{path}: no such detector file")
        try:
            table = pd.read_csv(path, compression="infer", low_memory=False)
        except (EOFError, zlib.error, OSError) as exc:  # gzip raises EOFError when the stream is cut short
            raise FormatError(f"{path}: truncated or corrupt file ({_first_line(exc)})") from None
        except pd.errors.EmptyDataError:
            raise FormatError(f"{path}: empty file, expected a CSV header") from None
        except pd.errors.ParserError as exc:
            raise FormatError(f"{path}: malformed CSV ({_first_line(exc)})") from None
        except UnicodeDecodeError:
            raise FormatError(f"{path}: not a text CSV file") from None
        return cls(table, source=str(path))

    @staticmethod
    def _validated(df: pd.DataFrame, source: str) -> pd.DataFrame:
        """Check and normalise the table: every column present, ids integral, numbers finite and sane."""
        if not isinstance(df, pd.DataFrame):
            raise FormatError(f"{source}: expected a table of modules, got {type(df).__name__}")
        missing = [c for c in COLUMNS if c not in df.columns]
        if missing:
            s = "s" if len(missing) > 1 else ""
            raise FormatError(f"{source}: missing column{s} {', '.join(missing)}")
        if len(df) == 0:
            raise FormatError(f"{source}: no modules")
        out = {}
        for col in COLUMNS:
            values = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64, na_value=np.nan)
            bad = ~np.isfinite(values)
            if col in ID_COLUMNS:
                bad |= (values != np.round(values)) | (values < 0) | (values >= 2**_ID_BITS)
            if bad.any():
                row, count = int(np.argmax(bad)), int(bad.sum())
                raw = df[col].iloc[row]
                what = "an empty value" if pd.isna(raw) else f"the invalid value {str(raw)!r}"
                hint = ", the last one: is the file cut short?" if row == len(df) - 1 else ""
                raise FormatError(f"{source}: column {col} has {what} in data row {row + 1}{hint} "
                                  f"({count} bad row{'s' if count > 1 else ''})")
            out[col] = values.astype(np.int64) if col in ID_COLUMNS else values
        table = pd.DataFrame(out)
        for col in ("module_t", "module_minhu", "module_maxhu", "module_hv", "pitch_u", "pitch_v"):
            bad = table[col].to_numpy() <= 0
            if bad.any():
                row = int(np.argmax(bad))
                raise FormatError(f"{source}: column {col} must be positive, is {table[col].iloc[row]} "
                                  f"in data row {row + 1}")
        dup = table.duplicated(list(ID_COLUMNS))
        if dup.any():
            row = int(np.argmax(dup.to_numpy()))
            key = tuple(int(x) for x in table.loc[row, list(ID_COLUMNS)].to_numpy())
            raise FormatError(f"{source}: module (volume_id, layer_id, module_id) = {key} appears more "
                              f"than once (data row {row + 1}; {int(dup.sum())} duplicates)")
        rot = table[list(ROTATION_COLUMNS)].to_numpy().reshape(-1, 3, 3)
        err = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2))
        bad = (err > _ROTATION_TOLERANCE) | (np.linalg.det(rot) <= 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise FormatError(f"{source}: the rotation of data row {row + 1} is not a proper rotation "
                              f"(|R R^T - 1| = {err[row]:.3g}); {int(bad.sum())} such rows")
        table = table.sort_values(list(ID_COLUMNS), kind="stable", ignore_index=True)
        return table

    def __len__(self) -> int:
        return len(self.modules)

    def __repr__(self) -> str:
        return f"Detector({len(self)} modules, {self.modules.groupby(['volume_id', 'layer_id']).ngroups} " \
               f"layers, from {self.source})"

    # ------------------------------------------------------------------ addressing

    def module_index(self, volume_id, layer_id, module_id) -> np.ndarray:
        """Dense row index of modules given by id (arrays broadcast together; scalars give a scalar).

        A packed int64 key and a binary search over the sorted keys: O(log N) per point, no Python loop,
        and no dense lookup cube sized by the largest ids. Ids that name no module raise
        :class:`EventError` saying how many and which one first.
        """
        arrays = np.broadcast_arrays(*(np.asarray(a) for a in (volume_id, layer_id, module_id)))
        for name, a in zip(ID_COLUMNS, arrays, strict=True):
            if a.dtype.kind not in "iub" and not (a.dtype.kind == "f" and np.all(a == np.round(a))):
                raise EventError(f"module_index: {name} must be integers, got dtype {a.dtype}")
        vol, lay, mod = (a.astype(np.int64) for a in arrays)
        in_range = np.ones(vol.shape, bool)
        for a in (vol, lay, mod):
            in_range &= (a >= 0) & (a < 2**_ID_BITS)
        keys = _pack(np.where(in_range, vol, 0), np.where(in_range, lay, 0), np.where(in_range, mod, 0))
        pos = np.searchsorted(self._keys, keys)
        pos_c = np.minimum(pos, len(self._keys) - 1)
        found = in_range & (self._keys[pos_c] == keys)
        if not found.all():
            bad = np.flatnonzero(~found.ravel())
            first = (int(vol.ravel()[bad[0]]), int(lay.ravel()[bad[0]]), int(mod.ravel()[bad[0]]))
            raise EventError(f"module_index: {bad.size} of {found.size} (volume_id, layer_id, module_id) are "
                             f"not modules of {self.source}, the first is {first}")
        return pos_c[()]

    def _rows(self, index, shape: tuple[int, ...]) -> np.ndarray:
        idx = np.asarray(index)
        if idx.dtype.kind not in "iu":
            raise EventError(f"module indices must be integers, got dtype {idx.dtype}")
        try:
            idx = np.broadcast_to(idx, shape)
        except ValueError:
            raise EventError(f"{idx.shape} module indices do not fit {shape} points") from None
        bad = (idx < 0) | (idx >= len(self))
        if bad.any():
            raise EventError(f"{int(bad.sum())} module indices are outside 0..{len(self) - 1} "
                             f"(the first is {int(idx[bad].ravel()[0])}; -1 means 'on no module')")
        return idx

    @staticmethod
    def _points(points, width: int, name: str) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        if p.ndim == 0 or p.shape[-1] != width:
            raise EventError(f"{name} must have shape (..., {width}), got {p.shape}")
        return p

    # ------------------------------------------------------------------ frames

    def to_local(self, points, index) -> np.ndarray:
        """Global (..., 3) points in mm to the local (u, v, w) of modules ``index``: R.T @ (p - c)."""
        p = self._points(points, 3, "points")
        idx = self._rows(index, p.shape[:-1])
        return np.einsum("...ji,...j->...i", self.rotations[idx], p - self.centres[idx])

    def to_global(self, local, index) -> np.ndarray:
        """Local (..., 3) points (u, v, w) of modules ``index`` to global x, y, z in mm: R @ l + c."""
        q = self._points(local, 3, "local")
        idx = self._rows(index, q.shape[:-1])
        return np.einsum("...ij,...j->...i", self.rotations[idx], q) + self.centres[idx]

    def inside(self, local, index, tolerance=0.0) -> np.ndarray:
        """True where the local point lies in its module's slab: |w| <= t/2, |v| <= hv, |u| <= hu(v).

        ``tolerance`` (mm, scalar or broadcastable array) widens all three limits alike. hu(v) is
        evaluated at v clipped to [-hv, hv], so that a tolerance past the short or long edge extends the
        edge straight out rather than continuing the slant of the trapezoid's sides.
        """
        q = self._points(local, 3, "local")
        idx = self._rows(index, q.shape[:-1])
        tol = np.asarray(tolerance, dtype=np.float64)
        u, v, w = q[..., 0], q[..., 1], q[..., 2]
        minhu, maxhu, hv = (self.half_widths[idx, k] for k in range(3))
        vc = np.clip(v, -hv, hv)
        hu = minhu + (maxhu - minhu) * (vc + hv) / (2.0 * hv)
        return (np.abs(w) <= 0.5 * self.thickness[idx] + tol) & (np.abs(v) <= hv + tol) & (np.abs(u) <= hu + tol)

    # ------------------------------------------------------------------ cells

    def local_to_cells(self, local, index) -> tuple[np.ndarray, np.ndarray]:
        """Channels (ch0 along u, ch1 along v) of the cells holding local points (..., 2 or 3).

        The grid is the module's bounding box, 0-based from its (-hu_box, -hv) corner (module docstring).
        Points off the grid get channels outside 0..n_cells-1, not clipped ones: compare with ``n_cells``.
        """
        q = np.asarray(local, dtype=np.float64)
        if q.ndim == 0 or q.shape[-1] not in (2, 3):
            raise EventError(f"local must have shape (..., 2) or (..., 3), got {q.shape}")
        idx = self._rows(index, q.shape[:-1])
        ch = np.floor((q[..., :2] + self._box[idx]) / self.pitch[idx])
        return ch[..., 0].astype(np.int64), ch[..., 1].astype(np.int64)

    def cells_to_local(self, ch0, ch1, index) -> np.ndarray:
        """Local (..., 3) centres (u, v, 0) of cells: ((ch + 1/2) * pitch - half-size of the bounding box)."""
        ch = np.stack(np.broadcast_arrays(np.asarray(ch0), np.asarray(ch1)), axis=-1).astype(np.float64)
        idx = self._rows(index, ch.shape[:-1])
        uv = (ch + 0.5) * self.pitch[idx] - self._box[idx]
        return np.concatenate([uv, np.zeros(uv.shape[:-1] + (1,))], axis=-1)

    # ------------------------------------------------------------------ layers

    @property
    def layers(self) -> pd.DataFrame:
        """One row per (volume_id, layer_id): kind, n_modules, and r and z of the module centres.

        ``kind`` is "barrel" for volumes 8, 13, 17, else "endcap"; ``position`` is the layer's natural
        coordinate, mean r for a barrel and mean z for an endcap, so one column sorts both kinds. r and z
        are given for both kinds (mean, min, max over module centres; r = hypot(cx, cy)), because the
        spread in r of a barrel layer (staggered modules) and in z of an endcap disk (modules on both
        faces) is what a seeding window has to allow for.
        """
        if self._layers is None:
            frame = self.modules[list(ID_COLUMNS[:2])].copy()
            frame["r"] = np.hypot(self.centres[:, 0], self.centres[:, 1])
            frame["z"] = self.centres[:, 2]
            g = frame.groupby(list(ID_COLUMNS[:2]), sort=True)
            lay = g.agg(n_modules=("r", "size"), r_mean=("r", "mean"), r_min=("r", "min"), r_max=("r", "max"),
                        z_mean=("z", "mean"), z_min=("z", "min"), z_max=("z", "max")).reset_index()
            barrel = lay["volume_id"].isin(BARREL_VOLUMES).to_numpy()
            lay.insert(2, "kind", np.where(barrel, "barrel", "endcap"))
            lay.insert(4, "position", np.where(barrel, lay["r_mean"], lay["z_mean"]))
            self._layers = lay
        return self._layers.copy()

    # ------------------------------------------------------------------ point -> module

    def _search_groups(self) -> list[tuple[cKDTree, np.ndarray, np.ndarray]]:
        """KD-trees of module centres, one per module shape, with each shape's bounding half-extents.

        A point inside a module is within the half-diagonal of its slab from the centre, so a ball of that
        radius around the point finds every candidate. One tree per shape keeps the ball tight: a single
        tree would need the largest radius (long-strip endcap, ~107 mm) even for 37 mm pixel modules.
        """
        if self._groups is None:
            extents = np.column_stack([self._box, 0.5 * self.thickness])
            shapes, inverse = np.unique(np.round(extents, 9), axis=0, return_inverse=True)
            inverse = inverse.ravel()
            self._groups = []
            for g in range(len(shapes)):
                rows = np.flatnonzero(inverse == g)
                self._groups.append((cKDTree(self.centres[rows]), rows, extents[rows].max(axis=0)))
        return self._groups

    def find_module(self, points, tolerance: float = 0.5) -> np.ndarray:
        """Row index of the module each global point (M, 3) lies on, or -1 where it lies on none.

        Candidates are the modules whose centre is within the bounding half-diagonal (widened by the
        tolerance) of the point, from per-shape KD-trees with a k that doubles only for the points that
        still have more neighbours; each candidate gets the vectorised bounds test :meth:`inside`. Where
        overlapping modules both contain the point, the one with the smallest |w| wins: a hit sits on
        its sensor's mid-plane, while an overlapping neighbour is millimetres away in w.

        The default tolerance of 0.5 mm covers the real hits, whose cluster centroids on trapezoid edges
        stick out of the sensor by up to ~0.32 mm in u (cells of the bounding-box grid that the slanted
        edge cuts); it is far below the w-spacing of overlapping modules, so it does not create ties.
        """
        p = self._points(points, 3, "points")
        if p.ndim != 2:
            raise EventError(f"points must have shape (M, 3), got {p.shape}")
        if not np.isfinite(p).all():
            bad = int((~np.isfinite(p).any(axis=1)).sum())
            raise EventError(f"find_module: {bad} points have a NaN or infinite coordinate")
        tol = float(tolerance)
        if not tol >= 0:
            raise EventError(f"find_module: tolerance must be >= 0 mm, got {tolerance}")
        m = len(p)
        pts, mods = [], []
        for tree, rows, ext in self._search_groups():
            radius = float(np.sqrt(np.sum((ext + tol) ** 2))) * (1 + 1e-9) + 1e-9
            todo = np.arange(m)
            k = 8
            while todo.size:
                k_eff = min(k, tree.n)
                dist, nn = tree.query(p[todo], k=k_eff, distance_upper_bound=radius, workers=-1)
                dist, nn = dist.reshape(len(todo), k_eff), nn.reshape(len(todo), k_eff)
                hit = nn < tree.n
                full = hit[:, -1] if k_eff < tree.n else np.zeros(len(todo), bool)
                # rows whose list may be truncated are asked again with a larger k; the others are done
                done = ~full
                r_i, c_i = np.nonzero(hit & done[:, None])
                pts.append(todo[r_i])
                mods.append(rows[nn[r_i, c_i]])
                todo = todo[full]
                k *= 4
        pi = np.concatenate(pts) if pts else np.zeros(0, np.int64)
        mj = np.concatenate(mods) if mods else np.zeros(0, np.int64)
        local = self.to_local(p[pi], mj)
        ok = self.inside(local, mj, tol)
        pi, mj, absw = pi[ok], mj[ok], np.abs(local[ok, 2])
        order = np.lexsort((mj, absw, pi))  # by point, then |w|, then row for a deterministic tie-break
        pi, mj = pi[order], mj[order]
        first = np.ones(pi.size, bool)
        first[1:] = pi[1:] != pi[:-1]
        result = np.full(m, -1, np.int64)
        result[pi[first]] = mj[first]
        return result

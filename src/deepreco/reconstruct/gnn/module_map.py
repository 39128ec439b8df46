"""Graph construction with a module map: which module pairs true tracks connect, learnt from simulated events.

`ModuleMap.fit` reads the true graphs (`truth.true_edges`) of training events and keeps

* every (inner module, outer module) pair that a true edge joins (the detector's 18,728 modules, indexed as in
  `deepreco.detector.Detector`);
* for every pair of layers, the range of four quantities of the true edges between them, from its
  ``quantile`` to its 1 - ``quantile`` value, widened by ``margin`` of its width and by `TOLERANCE` on each
  side:

      dphi = phi_b - phi_a,   z0 = z_a - r_a (z_b - z_a) / (r_b - r_a),   deta = eta_b - eta_a,
      curvature = 2 (a x b)_z / (|a| |b| |a - b|)   (the x-y circle through the origin and both hits).

`ModuleMap.build` makes an event's graph: every pair of hits on a connected module pair whose four quantities
lie in their layer pair's ranges. The pairs are made module pair by module pair in chunks, so memory stays
bounded on a full event; `ModuleMap.build_blocks` gives the chunks one by one. Module maps in the literature
keep per-module-pair ranges learnt from ~10^5 events; on the ~10^2 events one can simulate here most module
pairs are seen a few times only, so the ranges are the layer pair's, and the module pairs decide the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DeepRecoError, FormatError
from ...event import Event
from ...threads import ordered_map
from .truth import true_edges

FEATURES = ("dphi", "z0", "deta", "curvature")
TOLERANCE = np.array([2e-3, 2.0, 2e-3, 1e-5])  # added to every range: rad, mm, 1, 1/mm
_N_MAX_LAYERS = 100


def _detector():
    from ..ckf.geometry import detector

    return detector()


def hit_modules(hits, detector=None) -> np.ndarray:
    """The detector row of each hit's module (-1 for a module the detector does not have)."""
    det = detector or _detector()
    return det.module_index(hits["volume_id"].to_numpy(), hits["layer_id"].to_numpy(),
                            hits["module_id"].to_numpy())


def module_layers(detector=None) -> np.ndarray:
    """The dense layer number (sorted by volume_id, layer_id) of every detector module."""
    det = detector or _detector()
    key = det.ids[:, 0] * _N_MAX_LAYERS + det.ids[:, 1]
    return np.unique(key, return_inverse=True)[1]


def hit_coordinates(xyz: np.ndarray) -> np.ndarray:
    """(N, 6) float64 per hit: x, y, z, r, phi, eta (the quantities `pair_features` reads)."""
    r = np.hypot(xyz[:, 0], xyz[:, 1])
    phi = np.arctan2(xyz[:, 1], xyz[:, 0])
    eta = np.arcsinh(xyz[:, 2] / np.maximum(r, 1e-6))
    return np.column_stack([xyz, r, phi, eta])


def pair_features(coords: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(E, 4) quantities of `FEATURES` for the hit pairs (a, b), rows of ``coords`` (`hit_coordinates`)."""
    pa, pb = coords[a], coords[b]
    dphi = pb[:, 4] - pa[:, 4]
    dphi = (dphi + np.pi) % (2 * np.pi) - np.pi
    dr = pb[:, 3] - pa[:, 3]
    dz = pb[:, 2] - pa[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        z0 = np.where(np.abs(dr) > 1e-6, pa[:, 2] - pa[:, 3] * dz / dr, np.copysign(1e9, dz))
    chord = np.hypot(pb[:, 0] - pa[:, 0], pb[:, 1] - pa[:, 1])
    curvature = 2.0 * np.sin(dphi) / np.maximum(chord, 1e-9)  # = 2 (a x b)_z / (|a| |b| |a - b|)
    return np.column_stack([dphi, z0, pb[:, 5] - pa[:, 5], curvature]).astype(np.float32)


@dataclass
class ModuleMap:
    """Connected module pairs (P, 2) and per-layer-pair ranges of `FEATURES` (see the module's description)."""

    pairs: np.ndarray  # (P, 2) int64, sorted
    layer_pairs: np.ndarray  # (L, 2) int64 dense layer numbers, sorted
    lo: np.ndarray  # (L, 4)
    hi: np.ndarray  # (L, 4)
    n_events: int = 0

    # ---- learning -------------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, events, quantile: float = 1e-3, margin: float = 0.05, progress=None) -> ModuleMap:
        """Learn the map from events with truth (an iterable of `Event`)."""
        det = _detector()
        lay_of = module_layers(det)
        n_mod = len(det)
        keys, feats, lkeys = [], [], []
        n = 0
        for event in events:
            edges = true_edges(event)
            mod = hit_modules(event.hits, det)
            a, b = mod[edges[0]], mod[edges[1]]
            ok = (a >= 0) & (b >= 0)
            edges, a, b = edges[:, ok], a[ok], b[ok]
            keys.append(np.unique(a * n_mod + b))
            coords = hit_coordinates(event.hits[["x", "y", "z"]].to_numpy(np.float64))
            feats.append(pair_features(coords, edges[0], edges[1]))
            lkeys.append(lay_of[a] * _N_MAX_LAYERS + lay_of[b])
            n += 1
            if progress is not None:
                progress(n)
        if n == 0:
            raise DeepRecoError("a module map needs at least one training event")
        key = np.unique(np.concatenate(keys))
        pairs = np.column_stack([key // n_mod, key % n_mod])
        feats = np.concatenate(feats)
        lkey = np.concatenate(lkeys)
        order = np.argsort(lkey, kind="stable")
        lkey, feats = lkey[order], feats[order]
        ukey, start = np.unique(lkey, return_index=True)
        bounds = np.append(start, len(lkey))
        lo = np.zeros((len(ukey), len(FEATURES)), np.float32)
        hi = np.zeros_like(lo)
        for i in range(len(ukey)):
            f = feats[bounds[i]:bounds[i + 1]].astype(np.float64)
            q_lo, q_hi = np.quantile(f, [quantile, 1 - quantile], axis=0) if len(f) > 1 else (f[0], f[0])
            width = q_hi - q_lo
            lo[i], hi[i] = q_lo - margin * width - TOLERANCE, q_hi + margin * width + TOLERANCE
        layer_pairs = np.column_stack([ukey // _N_MAX_LAYERS, ukey % _N_MAX_LAYERS])
        return cls(pairs, layer_pairs, lo, hi, n)

    def union(self, other: ModuleMap) -> ModuleMap:
        """The map that connects what either map connects: the union of the module pairs and of the layer pairs,
        each layer pair's ranges the hull of both maps' (a map learnt from new events added to an older one
        without re-reading the old events)."""
        key = np.unique(np.concatenate([self.pairs[:, 0] * len(_detector()) + self.pairs[:, 1],
                                        other.pairs[:, 0] * len(_detector()) + other.pairs[:, 1]]))
        pairs = np.column_stack([key // len(_detector()), key % len(_detector())])
        keys = [m.layer_pairs[:, 0] * _N_MAX_LAYERS + m.layer_pairs[:, 1] for m in (self, other)]
        ukey = np.unique(np.concatenate(keys))
        lo = np.full((len(ukey), len(FEATURES)), np.inf, np.float32)
        hi = np.full_like(lo, -np.inf)
        for m, k in zip((self, other), keys, strict=True):
            i = np.searchsorted(ukey, k)
            lo[i], hi[i] = np.minimum(lo[i], m.lo), np.maximum(hi[i], m.hi)
        layer_pairs = np.column_stack([ukey // _N_MAX_LAYERS, ukey % _N_MAX_LAYERS])
        return ModuleMap(pairs, layer_pairs, lo, hi, self.n_events + other.n_events)

    # ---- use ------------------------------------------------------------------------------------------------
    def build(self, event: Event, max_chunk: int = 250_000, threads: int = 1) -> np.ndarray:
        """(2, E) hit rows (inner, outer): the event's graph, the concatenation of `build_blocks`."""
        blocks = list(self.build_blocks(event, max_chunk, threads))
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((2, 0), np.int64)

    def build_blocks(self, event: Event, max_chunk: int = 250_000, threads: int = 1):
        """The event's graph in blocks of (2, e) hit rows (inner, outer), in order. Candidate pairs are made
        ``max_chunk`` at a time: small chunks keep every temporary array under the allocator's mmap threshold
        (32 MB), which is faster than large ones, besides bounding the memory; ``threads`` threads share the
        chunks. The graph grows with the square of the hits (60 M edges, 1 GB, at 300,000): a caller that
        reduces each block (the edge filter) never holds all of it."""
        det = _detector()
        n_mod = len(det)
        mod = hit_modules(event.hits, det)
        rows = np.flatnonzero(mod >= 0)
        rows = rows[np.argsort(mod[rows], kind="stable")]
        count = np.bincount(mod[rows], minlength=n_mod)
        start = np.cumsum(count) - count
        pairs = self.pairs[(count[self.pairs[:, 0]] > 0) & (count[self.pairs[:, 1]] > 0)]
        if len(pairs) == 0:
            return
        lay_of = module_layers(det)
        lkey = self.layer_pairs[:, 0] * _N_MAX_LAYERS + self.layer_pairs[:, 1]
        pair_layer = np.clip(np.searchsorted(lkey, lay_of[pairs[:, 0]] * _N_MAX_LAYERS + lay_of[pairs[:, 1]]),
                             0, len(lkey) - 1)
        coords = hit_coordinates(event.hits[["x", "y", "z"]].to_numpy(np.float64)).astype(np.float32)
        n_b = count[pairs[:, 1]]
        size = count[pairs[:, 0]] * n_b
        ends = np.cumsum(size)
        spans = []
        first = 0
        while first < len(pairs):
            last = int(np.searchsorted(ends, (ends[first] - size[first]) + max_chunk, side="right"))
            last = max(last, first + 1)
            spans.append((first, last))
            first = last

        from .fast import HAVE_NUMBA, module_pair_edges

        def one(span):
            first, last = span
            if HAVE_NUMBA:  # the same edges, each candidate made and cut at once
                return module_pair_edges(pairs[first:last], pair_layer[first:last], start, count, rows, coords,
                                         self.lo, self.hi)
            p, nb, sz = pairs[first:last], n_b[first:last], size[first:last]
            g = np.repeat(np.arange(len(p), dtype=np.int32), sz)
            k = np.arange(sz.sum(), dtype=np.int64) - np.repeat(np.cumsum(sz) - sz, sz)
            nbg = nb[g]
            a = rows[start[p[g, 0]] + k // nbg]
            b = rows[start[p[g, 1]] + k % nbg]
            a, b = self._cut(coords, a, b, pair_layer[first:last][g])
            return np.stack([a, b])

        # NumPy releases the interpreter lock: the chunks share the cores, same result
        yield from ordered_map(one, spans, threads)

    def _cut(self, coords, a, b, li):
        """The pairs whose quantities lie in their layer pair's ranges; cheapest cuts first, arrays compacted
        after each. ``coords`` are float32 `hit_coordinates`."""
        lo, hi = self.lo, self.hi
        ra, za = coords[a, 3], coords[a, 2]
        dr = coords[b, 3] - ra
        dz = coords[b, 2] - za
        # z0 = za - ra dz / dr in [lo, hi], without dividing: (za - lo) dr >= ra dz >= (za - hi) dr for dr > 0
        # (reversed for dr < 0); dr = 0 (pairs on one disk ring) passes when dz carries no z0 information
        ra_dz = ra * dz
        ok = np.where(dr > 0, ((za - lo[li, 1]) * dr >= ra_dz) & (ra_dz >= (za - hi[li, 1]) * dr),
                      ((za - lo[li, 1]) * dr <= ra_dz) & (ra_dz <= (za - hi[li, 1]) * dr))
        ok |= dr == 0
        a, b, li = a[ok], b[ok], li[ok]
        dphi = coords[b, 4] - coords[a, 4]
        dphi = (dphi + np.float32(np.pi)) % np.float32(2 * np.pi) - np.float32(np.pi)
        ok = (dphi >= lo[li, 0]) & (dphi <= hi[li, 0])
        deta = coords[b, 5] - coords[a, 5]
        ok &= (deta >= lo[li, 2]) & (deta <= hi[li, 2])
        a, b, li, dphi = a[ok], b[ok], li[ok], dphi[ok]
        chord = np.hypot(coords[b, 0] - coords[a, 0], coords[b, 1] - coords[a, 1])
        curvature = 2.0 * np.sin(dphi) / np.maximum(chord, np.float32(1e-9))
        ok = (curvature >= lo[li, 3]) & (curvature <= hi[li, 3])
        return a[ok], b[ok]

    # ---- file ---------------------------------------------------------------------------------------------
    def write(self, handle) -> None:
        """The map as a compressed .npz into an open binary file."""
        np.savez_compressed(handle, pairs=self.pairs.astype(np.int32), layer_pairs=self.layer_pairs.astype(np.int16),
                            lo=self.lo, hi=self.hi, n_events=np.int64(self.n_events), features=np.array(FEATURES))

    @classmethod
    def read(cls, handle, source: str = "<module map>") -> ModuleMap:
        """The map from an open .npz file (`write`); `FormatError` naming ``source`` when it is not one."""
        try:
            with np.load(handle) as data:
                if tuple(data["features"]) != FEATURES:
                    raise FormatError(f"{source}: module map of other quantities {tuple(data['features'])}")
                return cls(data["pairs"].astype(np.int64), data["layer_pairs"].astype(np.int64),
                           data["lo"], data["hi"], int(data["n_events"]))
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise FormatError(f"{source}: not a deepreco module map ({exc})") from None

    def save(self, path) -> Path:
        """Write the map to ``path`` (whole or not at all)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as handle:
            self.write(handle)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path) -> ModuleMap:
        path = Path(path)
        if not path.is_file():
            raise DeepRecoError(f"{path}: no such module map file")
        with open(path, "rb") as handle:
            return cls.read(handle, str(path))

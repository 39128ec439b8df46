"""What the track finder knows of the detector: layer surfaces, their material, and the hits with their errors.

Each (volume_id, layer_id) becomes one surface: a cylinder r = R for the barrels (8, 13, 17), a plane z = Z for
the disks, with its extent (z range of a barrel, r range of a disk) from the corners of its modules. Hits lie
on their modules' mid-planes, a few mm off the layer's mean surface (staggered barrel modules, disk modules on
both faces); the finder measures each hit on its own surface (the cylinder through the hit, the plane through
it) so that this offset costs nothing.

Material, as radiation-length fractions per normal crossing (the detector description has 1.72 % X0 for the
pixel layers, 2.35 to 4.02 % for the strips, modules plus support slabs; see `deepreco.simulate.material`):

    pixel layers 2 %,  short-strip barrel 2.5 %,  short-strip disks 3 %,  long-strip barrel 3 %,  long-strip
    disks 4 %.

Measurement errors come from the module pitch: sigma = pitch / sqrt(12) across (u) and along (v) the cells, a
strip's length included, turned from the module frame into the surface's (phi, z) or (phi, r).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ...detector import Detector

BARREL_VOLUMES = (8, 13, 17)
PIXEL_VOLUMES = (7, 8, 9)
X0_FRACTION = {7: 0.02, 8: 0.02, 9: 0.02, 13: 0.025, 12: 0.03, 14: 0.03, 17: 0.03, 16: 0.04, 18: 0.04}

_DETECTOR: Detector | None = None
_LAYERS: Layers | None = None


def detector() -> Detector:
    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = Detector.load()
    return _DETECTOR


@dataclass
class Layers:
    """The 48 layer surfaces as arrays indexed by a dense layer number (sorted by volume_id, layer_id)."""

    volume: np.ndarray
    layer: np.ndarray
    barrel: np.ndarray  # bool
    position: np.ndarray  # R of a barrel, Z of a disk [mm]
    lo: np.ndarray  # extent in z (barrel) or r (disk)
    hi: np.ndarray
    x0: np.ndarray  # radiation-length fraction per normal crossing
    pixel: np.ndarray  # bool

    def index(self, volume_id, layer_id) -> np.ndarray:
        """Dense layer number of (volume_id, layer_id); -1 for a pair that is no layer."""
        key = np.asarray(volume_id, np.int64) * 1000 + np.asarray(layer_id, np.int64)
        keys = self.volume.astype(np.int64) * 1000 + self.layer
        pos = np.clip(np.searchsorted(keys, key), 0, len(keys) - 1)
        return np.where(keys[pos] == key, pos, -1)

    def __len__(self) -> int:
        return len(self.volume)


def layers() -> Layers:
    """The layer surfaces of the TrackML detector (built once, from the module corners)."""
    global _LAYERS
    if _LAYERS is None:
        det = detector()
        ids = det.ids
        hu = np.maximum(det.half_widths[:, 0], det.half_widths[:, 1])
        hv = det.half_widths[:, 2]
        corners = []
        for su, sv in ((-1, -1), (-1, 1), (1, -1), (1, 1), (0, 0)):
            local = np.column_stack([su * hu, sv * hv, np.zeros(len(hu))])
            corners.append(det.to_global(local, np.arange(len(hu))))
        pts = np.stack(corners)  # (5, n, 3)
        r, z = np.hypot(pts[..., 0], pts[..., 1]), pts[..., 2]
        frame = pd.DataFrame({"volume": ids[:, 0], "layer": ids[:, 1],
                              "rlo": r.min(0), "rhi": r.max(0), "zlo": z.min(0), "zhi": z.max(0),
                              "rc": np.hypot(det.centres[:, 0], det.centres[:, 1]), "zc": det.centres[:, 2]})
        g = frame.groupby(["volume", "layer"], sort=True).agg(
            rlo=("rlo", "min"), rhi=("rhi", "max"), zlo=("zlo", "min"), zhi=("zhi", "max"),
            rc=("rc", "mean"), zc=("zc", "mean")).reset_index()
        volume = g["volume"].to_numpy(np.int64)
        barrel = np.isin(volume, BARREL_VOLUMES)
        _LAYERS = Layers(
            volume=volume, layer=g["layer"].to_numpy(np.int64), barrel=barrel,
            position=np.where(barrel, g["rc"], g["zc"]).astype(np.float64),
            lo=np.where(barrel, g["zlo"], g["rlo"]).astype(np.float64),
            hi=np.where(barrel, g["zhi"], g["rhi"]).astype(np.float64),
            x0=np.array([X0_FRACTION.get(int(v), 0.03) for v in volume]),
            pixel=np.isin(volume, PIXEL_VOLUMES),
        )
    return _LAYERS


@dataclass
class Hits:
    """An event's hits as the finder uses them, with per-layer lookup sorted by azimuth.

    ``meas`` (n, 2) is (phi, z) on a barrel and (phi, r) on a disk; ``var`` (n, 2, 2) its covariance;
    ``surface`` (n,) the hit's own surface (its r on a barrel, its z on a disk). For each layer L,
    ``order[start[L]:start[L + 1]]`` are its hits sorted by phi.
    """

    hit_id: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    r: np.ndarray
    phi: np.ndarray
    layer: np.ndarray
    module: np.ndarray
    meas: np.ndarray
    var: np.ndarray
    surface: np.ndarray
    order: np.ndarray
    start: np.ndarray
    offset: np.ndarray  # per layer: the largest |surface - layer position| of its hits
    var_max: np.ndarray  # per layer: the largest variance of each measured coordinate, (n_layers, 2)

    def __len__(self) -> int:
        return len(self.hit_id)

    def in_layer(self, layer: int) -> np.ndarray:
        return self.order[self.start[layer]:self.start[layer + 1]]

    def without(self, taken: np.ndarray) -> Hits:
        """The same hits (the same numbers) with those marked in ``taken`` (bool per hit) left out of the
        per-layer lookup: what a later pass seeds and follows on."""
        order = self.order[~taken[self.order]]
        start = np.searchsorted(self.layer[order], np.arange(len(self.start)))
        return replace(self, order=order, start=start)


def prepare_hits(hits: pd.DataFrame, error_scale: float = 1.0) -> Hits:
    """Hits with measurement coordinates and covariances; hits on unknown modules are left out (layer -1)."""
    lay = layers()
    det = detector()
    x, y, z = (hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    vol, lid, mid = (hits[c].to_numpy(np.int64) for c in ("volume_id", "layer_id", "module_id"))
    layer = lay.index(vol, lid)
    n = len(x)
    r, phi = np.hypot(x, y), np.arctan2(y, x)
    # module rows for the pitch and orientation; hits on modules the detector does not know get no layer
    keys = (vol << 40) | (lid << 20) | mid
    dkeys = (det.ids[:, 0].astype(np.int64) << 40) | (det.ids[:, 1].astype(np.int64) << 20) | det.ids[:, 2]
    row = np.clip(np.searchsorted(dkeys, keys), 0, len(dkeys) - 1)
    known = (dkeys[row] == keys) & (layer >= 0)
    layer = np.where(known, layer, -1)
    sig = error_scale * det.pitch[row] / np.sqrt(12.0)  # (n, 2): across u, along v
    axes = det.rotations[row][:, :, :2]  # global components of u and v
    cov3 = np.einsum("nik,nk,njk->nij", axes, sig**2, axes)
    barrel = lay.barrel[np.maximum(layer, 0)]
    rs = np.maximum(r, 1e-6)
    jac = np.zeros((n, 2, 3))
    jac[:, 0, 0], jac[:, 0, 1] = -np.sin(phi) / rs, np.cos(phi) / rs
    jac[:, 1, 0] = np.where(barrel, 0.0, np.cos(phi))
    jac[:, 1, 1] = np.where(barrel, 0.0, np.sin(phi))
    jac[:, 1, 2] = np.where(barrel, 1.0, 0.0)
    var = jac @ cov3 @ np.transpose(jac, (0, 2, 1))
    meas = np.column_stack([phi, np.where(barrel, z, r)])
    surface = np.where(barrel, r, z)

    n_layers = len(lay)
    order = np.lexsort((phi, np.where(layer >= 0, layer, n_layers)))
    order = order[layer[order] >= 0]
    start = np.searchsorted(layer[order], np.arange(n_layers + 1))
    offset = np.zeros(n_layers)
    var_max = np.zeros((n_layers, 2))
    ok = layer >= 0
    if ok.any():
        dev = np.abs(surface - lay.position[np.maximum(layer, 0)])
        np.maximum.at(offset, layer[ok], dev[ok])
        np.maximum.at(var_max, layer[ok], np.column_stack([var[ok, 0, 0], var[ok, 1, 1]]))
    return Hits(hit_id=hits["hit_id"].to_numpy(np.int64), x=x, y=y, z=z, r=r, phi=phi, layer=layer,
                module=keys, meas=meas, var=var, surface=surface, order=order, start=start,
                offset=offset, var_max=var_max)

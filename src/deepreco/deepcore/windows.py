"""DeepCore's inputs and targets, as seed 000 defines them, and the shards they are written to.

Directions: for each jet, the layer-1 clusters within DeltaR < 0.1 of the jet axis, seen from the primary
vertex (the layer-2 clusters when layer 1 has none there). Two options of the seed's training recipe:
``merged_only`` keeps the merged clusters alone, a cluster being "merged" when its charge exceeds
``MERGED_FRACTION`` (1.5) times the most probable charge of one track from the vertex at that eta (21,700 e x
cosh(eta): the path through the 285 um of silicon grows as cosh(eta) in the barrel); ``jet_axis`` adds the jet
axis itself as one more direction per jet (``from_layer`` -1 in the window's meta), as the seed's inputs do.

Inputs, per direction: on each of the 4 layers a window of 30 x 30 pixels (u along r-phi first, v along z
second) centred on the pixel where the straight line from the primary vertex through the cluster (or along the
axis) crosses the layer, holding charge / 14,000 e; plus the jet eta and pT (in TeV, to be of order 1).

Target, on the layer-2 window, per pixel and for up to 3 overlapping tracks (charged particles with
pT > 1 GeV crossing layer 2 on the window's ladder):

- the track-crossing flag: 1 on the pixel the track crosses at mid-depth (TCP), 0 elsewhere;
- the 5 parameters (Delta x, Delta y, Delta phi, Delta eta, pT), written on the TCP and on its neighbourhood
  (NCP: the pixels within a circle of radius 2 pixels around the TCP): Delta x, Delta y = crossing point minus
  pixel centre in units of 0.01 cm; Delta phi, Delta eta = the track's direction at the crossing minus the
  window's direction, in units of 0.01; the pT as 10 GeV / pT, so that 1 GeV to 1 TeV maps onto [0.01, 10]
  where the clipped squared error (25) is meaningful and matching the seed's uncertainty, which is on q / pT.

Overlaps: on each pixel the tracks whose TCP is that pixel come first (by pT, highest first), then those whose
neighbourhood covers it (nearest TCP first); the first three fill the overlap slots 0, 1, 2.

Shards (``.npz``) hold a sparse target: rows (sample, a, b, slot, kind, 5 parameters), kind 2 = TCP, 1 = NCP;
:func:`dense_targets` rebuilds the (n, 3, 30, 30) flags, kinds and (n, 3, 5, 30, 30) parameters for a batch.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import FormatError, MissingFileError
from .detector import PixelBarrel, line_crossings
from .events import JetEvent
from .pixelsim import pixel_keys

__all__ = ["MERGED_FRACTION", "WINDOW", "Windows", "build_windows", "dense_targets", "directions", "merged",
           "read_shard", "ShardStream", "write_shard"]

WINDOW = 30
HALF = WINDOW // 2
N_OVERLAP = 3
N_PARAMS = 5
CHARGE_SCALE = 14000.0
CONE = 0.1
TRACK_PT_MIN = 1.0
NCP_RADIUS = 2
POS_UNIT = 0.1  # mm (0.01 cm)
ANGLE_UNIT = 0.01
PT_SCALE = 10.0  # parameter 5 = PT_SCALE / pT
MERGED_FRACTION = 1.5  # a cluster above 1.5 one-track charges is merged (the Landau tail of one track rarely is)
AXIS = -1  # from_layer of the jet-axis direction
_SHARD_KEYS = ("inputs", "jet", "t_index", "t_kind", "t_params", "meta")
META_COLUMNS = ("event", "jet", "eta", "phi", "from_layer", "ladder2", "iu2", "iv2", "layer2_missing")


def _wrap(a):
    return np.mod(np.asarray(a) + np.pi, 2 * np.pi) - np.pi


def merged(clusters: pd.DataFrame, eta: np.ndarray, det: PixelBarrel | None = None,
           fraction: float = MERGED_FRACTION) -> np.ndarray:
    """Which clusters are merged: charge > fraction x the most probable charge of one track from the vertex at
    ``eta`` (its path through the sensor is thickness x cosh(eta) in the barrel)."""
    from .pixelsim import E_PER_UM

    det = det or PixelBarrel()
    one_track = E_PER_UM * det.thickness * 1000.0 * np.cosh(eta)
    return clusters["charge"].to_numpy(float) > fraction * one_track


def directions(event: JetEvent, cone: float = CONE, merged_only: bool = False,
               jet_axis: bool = False) -> pd.DataFrame:
    """Per jet, the directions from the primary vertex through its core clusters (layer 1, else layer 2); with
    ``merged_only`` its merged clusters alone, with ``jet_axis`` the jet axis too (``cluster`` -1)."""
    cl = event.clusters
    d = cl[["x", "y", "z"]].to_numpy() - event.vertex
    eta = np.arcsinh(d[:, 2] / np.hypot(d[:, 0], d[:, 1]))
    phi = np.arctan2(d[:, 1], d[:, 0])
    usable = merged(cl, eta) if merged_only else np.ones(len(cl), bool)
    rows = []
    for j, jet in enumerate(event.jets.itertuples()):
        dr = np.hypot(eta - jet.eta, _wrap(phi - jet.phi))
        for layer in (0, 1):  # layer 2 only when layer 1 has nothing in the cone (a broken module)
            pick = np.flatnonzero((dr < cone) & (cl["layer"].to_numpy() == layer))
            if len(pick):
                pick = pick[usable[pick]]
                rows.append(pd.DataFrame({"jet": j, "jet_pt": jet.pt, "jet_eta": jet.eta, "jet_phi": jet.phi,
                                          "cluster": pick, "eta": eta[pick], "phi": phi[pick],
                                          "from_layer": layer}))
                break
        if jet_axis:
            rows.append(pd.DataFrame({"jet": [j], "jet_pt": jet.pt, "jet_eta": jet.eta, "jet_phi": jet.phi,
                                      "cluster": -1, "eta": jet.eta, "phi": jet.phi, "from_layer": AXIS}))
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in ("jet", "jet_pt", "jet_eta", "jet_phi", "cluster",
                                                                  "eta", "phi", "from_layer")})
    return pd.concat(rows, ignore_index=True)


@dataclass
class Windows:
    """The network's inputs for the directions of one or more events, with the targets when truth was there."""

    inputs: np.ndarray  # (n, 4, 30, 30) float32
    jet: np.ndarray  # (n, 2): jet eta, jet pT [TeV]
    meta: pd.DataFrame  # META_COLUMNS: where each window sits (layer-2 ladder, centre pixel) and its direction
    t_index: np.ndarray  # (m, 4) int: sample, a, b, slot
    t_kind: np.ndarray  # (m,) int8: 2 TCP, 1 NCP
    t_params: np.ndarray  # (m, 5) float32


def _fill(det: PixelBarrel, pixels: pd.DataFrame, layer: int, ladder, iu_c, iv_c, out: np.ndarray) -> None:
    """Charges of one layer into out (n, 30, 30), by searching key ranges: one per window column."""
    if len(pixels) == 0 or len(ladder) == 0:
        return
    keys = pixel_keys(det, pixels["layer"], pixels["ladder"], pixels["iu"], pixels["iv"])
    order = np.argsort(keys)
    keys, charge = keys[order], pixels["charge"].to_numpy(np.float32)[order] / CHARGE_SCALE
    n = len(ladder)
    a = np.arange(WINDOW)
    iu = iu_c[:, None] - HALF + a  # (n, 30)
    v_lo = np.clip(iv_c - HALF, 0, det.n_v)[:, None]
    v_hi = np.clip(iv_c + HALF, 0, det.n_v)[:, None]
    ok = (iu >= 0) & (iu < det.n_u) & (ladder[:, None] >= 0)
    base = pixel_keys(det, layer, np.maximum(ladder, 0)[:, None], np.clip(iu, 0, det.n_u - 1), 0)
    start = np.searchsorted(keys, base + v_lo)
    stop = np.where(ok, np.searchsorted(keys, base + v_hi), start)
    count = (stop - start).ravel()
    if count.sum() == 0:
        return
    first = np.repeat(start.ravel(), count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    idx = first + offset
    row = np.repeat(np.arange(n * WINDOW), count)
    b = (keys[idx] % det.n_v) - (iv_c[row // WINDOW] - HALF)
    out[row // WINDOW, row % WINDOW, b] = charge[idx]


def _targets(det: PixelBarrel, crossings: pd.DataFrame, meta: pd.DataFrame):
    """Sparse target rows for the layer-2 windows (see the module docstring)."""
    cr = crossings[(crossings["layer"] == 1) & (crossings["pt"] > TRACK_PT_MIN)]
    empty = (np.zeros((0, 4), np.int64), np.zeros(0, np.int8), np.zeros((0, N_PARAMS), np.float32))
    if len(cr) == 0 or len(meta) == 0:
        return empty
    ciu, civ = det.pixel_index(cr["u"].to_numpy(), cr["v"].to_numpy())
    # pair every window with the crossings on its ladder (few per ladder: a merge on the ladder index)
    w = pd.DataFrame({"sample": np.arange(len(meta)), "ladder": meta["ladder2"].to_numpy(),
                      "iu2": meta["iu2"].to_numpy(), "iv2": meta["iv2"].to_numpy(),
                      "weta": meta["eta"].to_numpy(), "wphi": meta["phi"].to_numpy()})
    c = pd.DataFrame({"ladder": cr["ladder"].to_numpy(), "ca": ciu, "cb": civ, "u": cr["u"].to_numpy(),
                      "v": cr["v"].to_numpy(), "eta": cr["eta"].to_numpy(), "phi": cr["phi"].to_numpy(),
                      "pt": cr["pt"].to_numpy()})
    pairs = w.merge(c, on="ladder")
    pairs["ca"] = pairs["ca"] - (pairs["iu2"] - HALF)
    pairs["cb"] = pairs["cb"] - (pairs["iv2"] - HALF)
    pairs = pairs[(pairs["ca"] > -NCP_RADIUS - 1) & (pairs["ca"] < WINDOW + NCP_RADIUS)
                  & (pairs["cb"] > -NCP_RADIUS - 1) & (pairs["cb"] < WINDOW + NCP_RADIUS)].reset_index(drop=True)
    if len(pairs) == 0:
        return empty
    da, db = np.meshgrid(np.arange(-NCP_RADIUS, NCP_RADIUS + 1), np.arange(-NCP_RADIUS, NCP_RADIUS + 1),
                         indexing="ij")
    disk = da ** 2 + db ** 2 <= NCP_RADIUS ** 2
    da, db = da[disk], db[disk]
    k = len(da)
    p = np.repeat(np.arange(len(pairs)), k)
    a = pairs["ca"].to_numpy()[p] + np.tile(da, len(pairs))
    b = pairs["cb"].to_numpy()[p] + np.tile(db, len(pairs))
    dist2 = np.tile(da ** 2 + db ** 2, len(pairs))
    inside = (a >= 0) & (a < WINDOW) & (b >= 0) & (b < WINDOW)
    p, a, b, dist2 = p[inside], a[inside], b[inside], dist2[inside]
    sample = pairs["sample"].to_numpy()[p]
    pt = pairs["pt"].to_numpy()[p]
    order = np.lexsort((-pt, dist2, b, a, sample))  # TCPs first (dist 0), then the nearest, then by pT
    p, a, b, dist2, sample, pt = (arr[order] for arr in (p, a, b, dist2, sample, pt))
    group = np.r_[True, (np.diff(sample) != 0) | (np.diff(a) != 0) | (np.diff(b) != 0)]
    start = np.maximum.accumulate(np.where(group, np.arange(len(group)), 0))
    slot = np.arange(len(group)) - start
    keep = slot < N_OVERLAP
    p, a, b, dist2, sample, slot = (arr[keep] for arr in (p, a, b, dist2, sample, slot))
    iu = pairs["iu2"].to_numpy()[p] - HALF + a
    iv = pairs["iv2"].to_numpy()[p] - HALF + b
    uc, vc = det.pixel_centre(iu, iv)
    params = np.stack([(pairs["u"].to_numpy()[p] - uc) / POS_UNIT, (pairs["v"].to_numpy()[p] - vc) / POS_UNIT,
                       _wrap(pairs["phi"].to_numpy()[p] - pairs["wphi"].to_numpy()[p]) / ANGLE_UNIT,
                       (pairs["eta"].to_numpy()[p] - pairs["weta"].to_numpy()[p]) / ANGLE_UNIT,
                       PT_SCALE / pairs["pt"].to_numpy()[p]], 1).astype(np.float32)
    kind = np.where(dist2 == 0, 2, 1).astype(np.int8)
    return np.stack([sample, a, b, slot], 1).astype(np.int64), kind, params


def build_windows(event: JetEvent, det: PixelBarrel | None = None, truth: bool = True, merged_only: bool = False,
                  jet_axis: bool = False) -> Windows:
    """Inputs (and targets, when ``truth``) for every direction of every jet of the event, in one batch
    (``merged_only``, ``jet_axis``: see :func:`directions`)."""
    det = det or PixelBarrel()
    dirs = directions(event, merged_only=merged_only, jet_axis=jet_axis)
    n = len(dirs)
    eta, phi = dirs["eta"].to_numpy(float), dirs["phi"].to_numpy(float)
    unit = np.stack([np.cos(phi), np.sin(phi), np.sinh(eta)], 1)
    inputs = np.zeros((n, det.n_layers, WINDOW, WINDOW), np.float32)
    centre = {}
    for layer in range(det.n_layers):
        x = line_crossings(det, layer, event.vertex, unit)
        iu, iv = det.pixel_index(x["u"].to_numpy(), x["v"].to_numpy())
        ladder = x["ladder"].to_numpy()
        centre[layer] = (ladder, iu, iv)
        _fill(det, event.pixels[event.pixels["layer"] == layer], layer, ladder, iu, iv, inputs[:, layer])
    ladder2, iu2, iv2 = centre[1]
    meta = pd.DataFrame({"event": event.event_id, "jet": dirs["jet"].to_numpy(np.int64), "eta": eta, "phi": phi,
                         "from_layer": dirs["from_layer"].to_numpy(np.int64), "ladder2": ladder2, "iu2": iu2,
                         "iv2": iv2, "layer2_missing": (ladder2 < 0) | (inputs[:, 1].max(axis=(1, 2)) <= 0)})
    jet = np.stack([dirs["jet_eta"].to_numpy(float), dirs["jet_pt"].to_numpy(float) / 1000.0], 1).astype(np.float32)
    t_index, t_kind, t_params = _targets(det, event.crossings if truth else event.crossings[:0], meta)
    return Windows(inputs, jet.reshape(n, 2), meta, t_index, t_kind, t_params)


def concat(parts: list[Windows]) -> Windows:
    """Windows of several events as one."""
    offsets = np.cumsum([0] + [len(w.inputs) for w in parts])[:-1]
    t_index = [w.t_index + np.array([o, 0, 0, 0]) for w, o in zip(parts, offsets, strict=True)]
    return Windows(np.concatenate([w.inputs for w in parts]), np.concatenate([w.jet for w in parts]),
                   pd.concat([w.meta for w in parts], ignore_index=True), np.concatenate(t_index),
                   np.concatenate([w.t_kind for w in parts]), np.concatenate([w.t_params for w in parts]))


def dense_targets(n: int, t_index: np.ndarray, t_kind: np.ndarray, t_params: np.ndarray):
    """(flags (n, 3, 30, 30), kinds (n, 3, 30, 30) int8, params (n, 3, 5, 30, 30)) from sparse rows."""
    flags = np.zeros((n, N_OVERLAP, WINDOW, WINDOW), np.float32)
    kinds = np.zeros((n, N_OVERLAP, WINDOW, WINDOW), np.int8)
    params = np.zeros((n, N_OVERLAP, N_PARAMS, WINDOW, WINDOW), np.float32)
    s, a, b, slot = (t_index[:, i] for i in range(4))
    kinds[s, slot, a, b] = t_kind
    flags[s, slot, a, b] = t_kind == 2
    params[s, slot, :, a, b] = t_params
    return flags, kinds, params


def write_shard(path: Path, windows: Windows) -> Path:
    """Write windows as one compressed shard, complete or absent (a temporary name, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = windows.meta[list(META_COLUMNS)].to_numpy(np.float64)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez_compressed(tmp, inputs=windows.inputs.astype(np.float16), jet=windows.jet,
                            t_index=windows.t_index.astype(np.int32), t_kind=windows.t_kind,
                            t_params=windows.t_params, meta=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_shard(path: Path) -> Windows:
    """One shard back as Windows."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such DeepCore shard")
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in _SHARD_KEYS}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise FormatError(f"{path}: not a DeepCore shard ({type(exc).__name__})") from None
    meta = pd.DataFrame(arrays["meta"], columns=list(META_COLUMNS))
    return Windows(arrays["inputs"].astype(np.float32), arrays["jet"], meta, arrays["t_index"].astype(np.int64),
                   arrays["t_kind"], arrays["t_params"])


class ShardStream(torch.utils.data.IterableDataset):
    """Batches streamed from shards: one shard in memory at a time, shards and samples shuffled per epoch.

    Yields (inputs (B, 4, 30, 30), jet (B, 2), flags (B, 3, 30, 30), kinds (B, 3, 30, 30), params
    (B, 3, 5, 30, 30)) tensors.
    """

    def __init__(self, paths: list[Path], batch_size: int = 32, seed: int = 0, shuffle: bool = True):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise MissingFileError("no DeepCore shards to stream")
        self.batch_size, self.seed, self.shuffle, self.epoch = batch_size, seed, shuffle, 0

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        order = rng.permutation(len(self.paths)) if self.shuffle else np.arange(len(self.paths))
        for i in order:
            w = read_shard(self.paths[i])
            n = len(w.inputs)
            perm = rng.permutation(n) if self.shuffle else np.arange(n)
            rows_of = np.argsort(w.t_index[:, 0], kind="stable")
            bounds = np.searchsorted(w.t_index[rows_of, 0], np.arange(n + 1))
            for lo in range(0, n, self.batch_size):
                pick = perm[lo:lo + self.batch_size]
                rows = np.concatenate([rows_of[bounds[s]:bounds[s + 1]] for s in pick])
                index = w.t_index[rows].copy()
                index[:, 0] = _position(pick, index[:, 0])
                flags, kinds, params = dense_targets(len(pick), index, w.t_kind[rows], w.t_params[rows])
                yield (torch.from_numpy(w.inputs[pick]), torch.from_numpy(w.jet[pick]), torch.from_numpy(flags),
                       torch.from_numpy(kinds), torch.from_numpy(params))


def _position(pick: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Where each sample id stands in ``pick`` (every id is in it)."""
    where = np.empty(pick.max() + 1, np.int64)
    where[pick] = np.arange(len(pick))
    return where[samples]

"""CLUE, the CLUstering of Energy (Rovere et al., arXiv:2001.09761), vectorised with a KD-tree.

For points i with weights w_i (hit energies) and a critical distance d_c:

    rho_i   = sum_{j : d_ij < d_c} chi(d_ij) w_j,        chi = 1 for j = i, 1/2 otherwise
    nh_i    = argmin_{j : rho_j > rho_i, d_ij < d_m} d_ij, delta_i = d(i, nh_i) (infinite when none)
    seed    : rho_i >= rho_c and delta_i > delta_c
    outlier : rho_i <  rho_c and delta_i > d_m          (d_m = outlier_delta_factor x delta_c)

every other point follows its nearest higher, and a cluster is a seed with the chain of its followers.
Ties in rho are broken by index so the order is strict. ``clue`` works in any dimension; anisotropic or
per-layer distances come from scaling the coordinates first (``clue_layers`` puts each layer far apart and
divides by that layer's d_c, so one tree serves all layers).

``ClueClustering`` is HGCAL's chain: CLUE per layer (2D) on the hits, then CLUE on the layer clusters in
projective (x, y) at the face and a window of layers (the CLUE3D idea), the same parameters on every event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .geometry import DEFAULT, Calorimeter
from .showers import EM, HAD, MIP, NOISE


def clue(points: np.ndarray, weights: np.ndarray, dc: float, rhoc, outlier_delta_factor: float = 2.0,
         delta_c: float | None = None) -> np.ndarray:
    """Cluster label of each point (0..k-1), -1 for outliers. ``rhoc`` may be a number or one per point.

    >>> pts = np.array([[0., 0], [0.5, 0], [0, 0.5], [10, 10], [10.5, 10], [30, 30]])
    >>> clue(pts, np.array([3., 1, 1, 3, 1, 0.1]), dc=1.0, rhoc=2.0).tolist()
    [0, 0, 0, 1, 1, -1]
    """
    points = np.asarray(points, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    n = len(points)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    delta_c = dc if delta_c is None else delta_c
    dm = outlier_delta_factor * delta_c
    tree = cKDTree(points)
    # every pair within the reach when it is about d_c (their count is the density's); a far reach (the MIP
    # pass: 8 d_c) has (8 d_c / d_c)^3 times more pairs, quadratic in a pile-up event's free hits (9 of CLUE's
    # 9.4 s at mu = 50): there each point's nearest higher comes from kNN queries instead. (Points at exactly
    # equal distances may take another of them as nearest higher in the two searches.)
    reach = max(dc, dm) if dm <= 2 * dc else dc
    pairs = tree.query_pairs(reach, output_type="ndarray")
    i = np.concatenate([pairs[:, 0], pairs[:, 1]])
    j = np.concatenate([pairs[:, 1], pairs[:, 0]])
    d = np.linalg.norm(points[i] - points[j], axis=1)
    near = d < dc
    rho = w + 0.5 * np.bincount(i[near], weights=w[j[near]], minlength=n)
    # strict order: rho, then index
    order = np.lexsort((np.arange(n), rho))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    if reach < dm:
        nh, delta = _nearest_higher(tree, points, rank, dm)
    else:
        higher = (rank[j] > rank[i]) & (d < dm)
        hi_i, hi_j, hi_d = i[higher], j[higher], d[higher]
        nh = np.full(n, -1, dtype=np.int64)
        delta = np.full(n, np.inf)
        if len(hi_i):
            srt = np.lexsort((hi_d, hi_i))
            first = np.unique(hi_i[srt], return_index=True)[1]
            nh[hi_i[srt][first]] = hi_j[srt][first]
            delta[hi_i[srt][first]] = hi_d[srt][first]
    rhoc = np.broadcast_to(np.asarray(rhoc, dtype=np.float64), (n,))
    seed = (rho >= rhoc) & (delta > delta_c)
    outlier = (rho < rhoc) & (delta > dm)
    # roots point to themselves; followers to their nearest higher; pointer jumping finds each root
    parent = np.where(seed | outlier | (nh < 0), np.arange(n), nh)
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    root_is_seed = seed[parent]
    labels = np.full(n, -1, dtype=np.int64)
    seeds = np.flatnonzero(seed)
    label_of_seed = np.full(n, -1, dtype=np.int64)
    label_of_seed[seeds] = np.arange(len(seeds))
    labels[root_is_seed] = label_of_seed[parent[root_is_seed]]
    return labels


def clue_package(points: np.ndarray, weights: np.ndarray, dc: float, rhoc: float, outlier_delta_factor: float = 2.0,
                 points_per_tile: int | None = None) -> np.ndarray:
    """``clue`` done by the ``CLUEstering`` package (1.x: ``pip install 'CLUEstering<2'`` with Boost headers;
    2.x needs Boost 1.75 or newer), the optional peer: the same parameters, labels 0..k-1 and -1 for outliers.

    The package standardises each axis before clustering; its coordinates are put back to the points' own
    so that d_c means the same. Its tiles hold ``points_per_tile`` points on average, all points in one tile
    by default (quadratic, for checks): with finer tiles CLUEstering 1.4.0 loses neighbours (measured: its
    clusters then change with the tile size and differ from ours, in 2D and in 3D); with one tile they are ours.
    """
    try:
        import CLUEstering
    except ImportError:
        raise ImportError("the CLUEstering package is not installed: pip install 'CLUEstering<2' (it builds with "
                          "Boost headers, e.g. Debian's libboost-dev; 2.x needs Boost >= 1.75)") from None
    points = np.asarray(points, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if points.ndim != 2 or len(w) != len(points):
        raise ValueError(f"points must be (n, d) with one weight each, got {points.shape} and {w.shape}")
    if not np.ndim(rhoc) == 0:
        raise ValueError("CLUEstering takes one rho_c for all points")
    n = len(points)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    c = CLUEstering.clusterer(float(dc), float(rhoc), float(outlier_delta_factor),
                              int(min(n, points_per_tile or n)))
    if not hasattr(c, "clust_data"):
        raise ImportError(f"CLUEstering {getattr(CLUEstering, '__version__', '?')}: only the 1.x interface is "
                          "supported here")
    c.read_data(pd.DataFrame({**{f"x{i}": points[:, i] for i in range(points.shape[1])}, "weight": w}))
    for i in range(points.shape[1]):
        c.clust_data.coords[i] = points[:, i].copy()
    c.run_clue()
    return np.asarray(c.clust_prop.cluster_ids, dtype=np.int64)


def _nearest_higher(tree, points: np.ndarray, rank: np.ndarray, dm: float) -> tuple[np.ndarray, np.ndarray]:
    """Each point's nearest point of higher rank closer than ``dm`` and its distance (-1, inf: none): the k
    nearest, k growing 4 times a round for the points whose k nearest are all lower yet all closer than dm."""
    n = len(points)
    nh = np.full(n, -1, dtype=np.int64)
    delta = np.full(n, np.inf)
    todo, k = np.arange(n), 8
    while len(todo):
        kk = min(k, n)
        d, idx = tree.query(points[todo], k=kk, distance_upper_bound=dm)
        d, idx = d.reshape(len(todo), kk), idx.reshape(len(todo), kk)
        valid = idx < n  # a missing neighbour has index n
        higher = valid & (d < dm) & (rank[np.minimum(idx, n - 1)] > rank[todo][:, None])
        rows = np.flatnonzero(higher.any(1))
        first = higher[rows].argmax(1)
        nh[todo[rows]], delta[todo[rows]] = idx[rows, first], d[rows, first]
        more = ~higher.any(1) & valid[:, -1] & (d[:, -1] < dm) & (kk < n)
        todo, k = todo[more], k * 4
    return nh, delta


def clue_layers(x, y, layer, weights, dc_per_layer, rhoc, outlier_delta_factor: float = 2.0) -> np.ndarray:
    """CLUE in each layer's (x, y) plane, all layers at once; labels are unique across layers."""
    dcl = np.asarray(dc_per_layer, dtype=np.float64)[layer]
    sep = 1e4  # layers 1e4 d_c apart never meet
    pts = np.stack([x / dcl, y / dcl, layer * sep], axis=1)
    return clue(pts, weights, 1.0, rhoc, outlier_delta_factor)


@dataclass
class ClueClustering:
    """Per-layer CLUE then CLUE on layer clusters; one ``reconstruct(event)`` like every method.

    Per layer: d_c = ``dc_em`` / ``dc_had`` mm, rho_c = ``kappa`` x the layer's noise width (as CMSSW's
    HGCAL CLUE); across layers: layer clusters within ``dc_3d`` mm (projected to the face) and
    ``layer_window`` layers, rho_c = ``rhoc_3d`` GeV. Then a MIP pass (as TICL's MIP iteration): a MIP's hit is
    about one MIP, under the per-layer rho_c (``kappa`` = 9 noise widths = 1.35 MIP), so a muon's hits are all
    outliers above; the hits left out of every cluster, weighted in MIPs, go through CLUE in the same
    projective 3D space with rho_c = 3 MIPs, and a chain over at least ``mip_layers`` layers is a cluster
    (0: no MIP pass). Before it, a hadron's pieces within ``link_mm`` at the face are linked (`link_hadronic`;
    0: not linked): on isolated pions of 10-200 GeV the efficiency went from 0.80 to 0.93 and the share of the
    deposit in the found cluster from 0.78 to 0.86 (30 pions), photons and electrons unchanged; a piece below
    ``link_min_fraction`` of the taking cluster's energy is not linked (0: every piece may be). A cluster whose
    shower starts at layer ``link_late_layer`` or later (`start_layers`) counts as a hadron's piece in the linking
    whatever its share in CE-E (0: none does): a pion's pi0s shower where it interacted, deep in CE-E, while a
    photon from the vertex starts within its first few X0. On tuning events (seed 21, 120 pions of 5-200 GeV)
    CLUE's pions found went from 0.950 to 0.967 (0.975 from layer 6; from layer 4 a photon beside a pion was
    taken by it: 0.825 against 0.925 at 30 mm), photons, electrons and gun events unchanged or better.
    """

    dc_em: float = 13.0
    dc_had: float = 26.0
    kappa: float = 9.0
    outlier_delta_factor: float = 2.0
    dc_3d: float = 30.0
    layer_window: float = 5.0
    rhoc_3d: float = 1.0
    outlier_3d: float = 2.0
    mip_layers: int = 10
    link_mm: float = 150.0
    link_min_fraction: float = 0.0
    link_late_layer: int = 8
    geometry: Calorimeter = DEFAULT
    name: str = field(default="clue", init=False, repr=False)

    def layer_clusters(self, hits: pd.DataFrame) -> np.ndarray:
        geo = self.geometry
        layer = hits["layer"].to_numpy(np.int64)
        dc = np.where(geo["is_em"], self.dc_em, self.dc_had)
        rhoc = self.kappa * geo.noise_mips * geo["mip"][layer]
        # both endcaps in one tree: offset -z layers by the layer count
        side = np.where(hits["z"].to_numpy() < 0, geo.n_layers, 0)
        dcs = np.concatenate([dc, dc])
        return clue_layers(hits["x"].to_numpy(), hits["y"].to_numpy(), layer + side, hits["energy"].to_numpy(),
                           dcs, rhoc, self.outlier_delta_factor)

    def reconstruct(self, event) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(hit_id, cluster_id) with -1 for unclustered hits, and per cluster (cluster_id, energy, kind,
        n_hits, x, y, z)."""
        hits = event.hits
        if len(hits) == 0:
            return _empty()
        lc = self.layer_clusters(hits)
        ok = lc >= 0
        e = hits["energy"].to_numpy()
        lcs = pd.DataFrame({"lc": lc[ok], "e": e[ok], "ex": e[ok] * hits["x"].to_numpy()[ok],
                            "ey": e[ok] * hits["y"].to_numpy()[ok], "z": hits["z"].to_numpy()[ok],
                            "layer": hits["layer"].to_numpy()[ok]}).groupby("lc").agg(
            e=("e", "sum"), ex=("ex", "sum"), ey=("ey", "sum"), z=("z", "first"), layer=("layer", "first"))
        x, y = lcs["ex"] / lcs["e"], lcs["ey"] / lcs["e"]
        scale = self.geometry.z_front / np.abs(lcs["z"])
        pts = np.stack([x * scale / self.dc_3d, y * scale / self.dc_3d,
                        (lcs["layer"] + np.where(lcs["z"] < 0, 1000, 0)) / self.layer_window], axis=1)
        lab3 = clue(pts, lcs["e"].to_numpy(), 1.0, self.rhoc_3d, self.outlier_3d)
        hit_cluster = np.full(len(hits), -1, dtype=np.int64)
        hit_cluster[ok] = pd.Series(lab3, index=lcs.index).loc[lc[ok]].to_numpy()
        if self.link_mm > 0:
            link_hadronic(hits, hit_cluster, self.geometry, self.link_mm, min_fraction=self.link_min_fraction,
                          late_layer=self.link_late_layer)
        if self.mip_layers > 0:
            self._mip_pass(hits, hit_cluster)
        return finish(hits, hit_cluster, self.geometry)

    def _mip_pass(self, hits: pd.DataFrame, hit_cluster: np.ndarray) -> None:
        """Chains of the hits in no cluster over ``mip_layers`` layers or more become clusters (in place)."""
        mip_pass(hits, hit_cluster, self.geometry, self.mip_layers, self.dc_3d, self.layer_window)


def mip_pass(hits: pd.DataFrame, hit_cluster: np.ndarray, geo: Calorimeter, mip_layers: int = 10,
             dc_3d: float = 30.0, layer_window: float = 5.0, base: int | None = None,
             max_hits_per_layer: float | None = None) -> np.ndarray:
    """CLUE's MIP pass (`ClueClustering`): the hits in no cluster, weighted in MIPs, go through CLUE in the
    projective 3D space (``dc_3d`` mm at the face, ``layer_window`` layers) with rho_c = 3 MIPs, one seed per
    chain, and a chain over ``mip_layers`` layers or more (and, with ``max_hits_per_layer``, at most that many
    hits per layer it has: a track, not a shower's halo) becomes a cluster, numbered from ``base`` (default: one
    past the largest label). Labels ``hit_cluster`` in place; returns the new clusters' labels."""
    free = np.flatnonzero(hit_cluster < 0)
    if len(free) < mip_layers:
        return np.zeros(0, np.int64)
    layer = hits["layer"].to_numpy(np.int64)[free]
    z = hits["z"].to_numpy()[free]
    scale = geo.z_front / np.abs(z) / dc_3d
    pts = np.stack([hits["x"].to_numpy()[free] * scale, hits["y"].to_numpy()[free] * scale,
                    (layer + np.where(z < 0, 1000, 0)) / layer_window], axis=1)
    # a MIP chain has no density peak: one seed per chain (delta_c of 4 windows), not one per fluctuation
    lab = clue(pts, hits["energy"].to_numpy()[free] / geo["mip"][layer], 1.0, 3.0, 2.0, delta_c=4.0)
    ok = lab >= 0
    if not ok.any():
        return np.zeros(0, np.int64)
    per_chain = pd.Series(layer[ok]).groupby(lab[ok])
    n_layers, n_hits = per_chain.nunique(), per_chain.size()
    good = n_layers.to_numpy() >= mip_layers
    if max_hits_per_layer is not None:
        good &= n_hits.to_numpy() <= max_hits_per_layer * n_layers.to_numpy()
    keep = n_layers.index[good].to_numpy()
    chosen = ok & np.isin(lab, keep)
    first = int(hit_cluster.max()) + 1 if base is None else int(base)
    hit_cluster[free[chosen]] = first + np.searchsorted(keep, lab[chosen])
    return first + np.arange(len(keep), dtype=np.int64)


def link_hadronic(hits: pd.DataFrame, hit_cluster: np.ndarray, geo: Calorimeter, radius_mm: float,
                  absorber_had: float = 0.1, piece_had: float = 0.5, min_fraction: float = 0.0,
                  late_layer: int = 0) -> None:
    """Join the pieces of a hadron's shower (in place): its sub-showers start apart and tilt, and CLUE makes
    clusters of them 50-170 mm apart at the face (measured on isolated pions). Largest first, a cluster with at
    least ``absorber_had`` of its energy in CE-H takes every smaller cluster of the same endcap with at least
    ``piece_had`` in CE-H whose centre, projected to the face, lies within ``radius_mm``. A photon's or an
    electron's cluster (all in CE-E) neither takes nor is taken, nor does a muon's track (`shape_kind` MIP: it
    crosses CE-H whole, and a network's muon cluster next to a hadron was taken, measured on gun events). A piece
    below ``min_fraction`` of the taking cluster's energy is left alone (0: none is; under pile-up the soft
    clusters around a hard one are mostly pile-up, `benchmarks/calo_link_pileup.py`). With ``late_layer`` > 0 a
    cluster whose shower starts at that layer or later (`start_layers`) counts as hadronic (it takes and is
    taken): a hadron's pi0s, not a photon from the vertex."""
    ok = np.flatnonzero(hit_cluster >= 0)
    if len(ok) == 0:
        return
    layer = hits["layer"].to_numpy(np.int64)[ok]
    e = hits["energy"].to_numpy()[ok]
    z = hits["z"].to_numpy()[ok]
    scale = geo.z_front / np.abs(z)
    df = pd.DataFrame({"c": hit_cluster[ok], "e": e, "had": e * ~geo["is_em"][layer],
                       "fx": e * hits["x"].to_numpy()[ok] * scale, "fy": e * hits["y"].to_numpy()[ok] * scale,
                       "side": e * np.sign(z)})
    g = df.groupby("c").sum()
    ids = g.index.to_numpy()
    energy, had = g["e"].to_numpy(), g["had"].to_numpy() / g["e"].to_numpy()
    if late_layer > 0:
        # a shower that starts deep in CE-E is a hadron's (a pi0 of its interaction), not a photon's from the vertex
        late = start_layers(hit_cluster[ok], layer, e).reindex(ids).to_numpy() >= late_layer
        had = np.where(late, np.maximum(had, 1.0), had)
    xy = np.stack([g["fx"] / g["e"], g["fy"] / g["e"]], axis=1)
    side = np.sign(g["side"].to_numpy())
    target = ids.copy()
    taken = (shape_kind(hits, hit_cluster, geo).reindex(ids) == MIP).to_numpy().copy()  # never taken nor takes
    for i in np.argsort(-energy, kind="stable"):
        if taken[i] or had[i] < absorber_had:
            continue
        near = (~taken & (energy < energy[i]) & (energy >= min_fraction * energy[i]) & (had >= piece_had)
                & (side == side[i])
                & (np.hypot(*(xy - xy[i]).T) < radius_mm))
        near[i] = False
        target[near] = ids[i]
        taken[near] = True
    hit_cluster[ok] = pd.Series(target, index=ids).loc[hit_cluster[ok]].to_numpy()


def start_layers(cluster: np.ndarray, layer: np.ndarray, energy: np.ndarray, fraction: float = 0.05) -> pd.Series:
    """Per cluster, the first layer by which ``fraction`` of its energy is deposited (its shower's start)."""
    df = pd.DataFrame({"c": cluster, "layer": layer, "e": energy}).sort_values(["c", "layer"], kind="stable")
    cum = df.groupby("c")["e"].cumsum() / df.groupby("c")["e"].transform("sum")
    return df.loc[cum.to_numpy() >= fraction].groupby("c")["layer"].first()


def _empty():
    return (pd.DataFrame({"hit_id": np.zeros(0, np.int64), "cluster_id": np.zeros(0, np.int64)}),
            pd.DataFrame({c: [] for c in ("cluster_id", "energy", "kind", "n_hits", "x", "y", "z")}))


def shape_kind(hits: pd.DataFrame, cluster: np.ndarray, geo: Calorimeter) -> pd.DataFrame:
    """A classical guess of each cluster's class from its shape: MIP when it spans many layers with about
    one small hit per layer, EM when 90 % of its energy lies in CE-E, hadronic otherwise."""
    ok = cluster >= 0
    layer = hits["layer"].to_numpy()[ok]
    e = hits["energy"].to_numpy()[ok]
    df = pd.DataFrame({"c": cluster[ok], "e": e, "em": e * geo["is_em"][layer], "layer": layer,
                       "mips": e / geo["mip"][layer]})
    g = df.groupby("c")
    stats_ = pd.DataFrame({"e": g["e"].sum(), "em": g["em"].sum(), "n": g.size(), "layers": g["layer"].nunique(),
                           "mips": g["mips"].median()})
    kind = np.where((stats_["layers"] >= 10) & (stats_["n"] <= 1.5 * stats_["layers"]) & (stats_["mips"] < 3), MIP,
                    np.where(stats_["em"] >= 0.9 * stats_["e"], EM, HAD))
    return pd.Series(kind, index=stats_.index)


def finish(hits: pd.DataFrame, hit_cluster: np.ndarray, geo: Calorimeter, kind=None, energy=None):
    """The common output: the hit table and the cluster table (energy = sum of its hits unless given)."""
    hit_table = pd.DataFrame({"hit_id": hits["hit_id"].to_numpy(), "cluster_id": hit_cluster})
    ok = hit_cluster >= 0
    if not ok.any():
        return hit_table, _empty()[1]
    e = hits["energy"].to_numpy()[ok]
    df = pd.DataFrame({"c": hit_cluster[ok], "e": e, "ex": e * hits["x"].to_numpy()[ok],
                       "ey": e * hits["y"].to_numpy()[ok], "ez": e * hits["z"].to_numpy()[ok]})
    g = df.groupby("c").agg(energy=("e", "sum"), ex=("ex", "sum"), ey=("ey", "sum"), ez=("ez", "sum"),
                            n_hits=("e", "size"))
    kinds = shape_kind(hits, hit_cluster, geo) if kind is None else pd.Series(kind).reindex(g.index)
    clusters = pd.DataFrame({"cluster_id": g.index.to_numpy(np.int64),
                             "energy": g["energy"].to_numpy() if energy is None else
                             pd.Series(energy).reindex(g.index).to_numpy(),
                             "kind": kinds.reindex(g.index).to_numpy(np.int64), "n_hits": g["n_hits"].to_numpy(),
                             "x": (g["ex"] / g["energy"]).to_numpy(), "y": (g["ey"] / g["energy"]).to_numpy(),
                             "z": (g["ez"] / g["energy"]).to_numpy()})
    return hit_table, clusters


def hit_classes(hit_table: pd.DataFrame, clusters: pd.DataFrame) -> np.ndarray:
    """Per-hit class from the cluster's kind; unclustered hits are noise."""
    kind = pd.Series(clusters["kind"].to_numpy(), index=clusters["cluster_id"].to_numpy())
    c = hit_table["cluster_id"].to_numpy()
    out = np.full(len(c), NOISE, dtype=np.int64)
    ok = c >= 0
    out[ok] = kind.reindex(c[ok]).fillna(NOISE).to_numpy(np.int64)
    return out


__all__ = ["EM", "HAD", "MIP", "NOISE", "ClueClustering", "clue", "clue_layers", "clue_package", "finish",
           "hit_classes", "link_hadronic", "mip_pass", "start_layers"]

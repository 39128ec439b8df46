"""The combinatorial Kalman filter: every seed followed outward, the candidates of a step vectorised.

A candidate is a state x (5 parameters, see `helix`) with covariance P on its last surface. One step:

1. navigation: the next layer is the surface the helix crosses first (smallest positive path) within the
   layer's extent;
2. prediction: x, P transported there, P' = J P J^T (`helix.transport`);
3. search: the layer's hits within n_sigma of the prediction (`seeding.grid_pair_blocks`), each hit then measured on
   its own surface (the candidate's prediction carried there exactly, its covariance to first order in the short
   step, `helix.short_step_cov`: the step of a steep track to a module a few mm off moves it by cm in z);
4. gating and branching: chi2 = r^T S^-1 r with r = m - H x, S = V + H P H^T; hits with chi2 < chi2_max, the
   ``n_branches`` best of them each make a new candidate, updated by the Kalman gain

       K = P H^T S^-1,   x <- x + K r,   P <- (1 - K H) P;

   a candidate with no compatible hit goes on with a hole;
5. overlaps: a hit in an overlapping module of the same layer is taken too when it passes the gate (a module
   the candidate already has a hit on is not searched again);
6. multiple scattering in the layer's material enters as process noise on the direction, with the Highland
   width theta0 = 13.6 MeV / (beta p) sqrt(x / X0) (1 + 0.038 ln(x / (X0 beta^2))), x / X0 the layer's
   fraction over the path in it (divided by the cosine of the incidence angle):

       var(psi) += theta0^2 (1 + t^2),    var(t) += theta0^2 (1 + t^2)^2       (t = cot theta);

7. pruning: candidates that end on the same two hits (one particle seeded several times) merge into the best;
   at most ``max_candidates`` per seed survive, ranked by hits and then chi2; candidates with more than
   ``max_holes`` holes, or that leave the detector, are finished.

Inward (``Finder(inward=True)``, to extend tracks towards the beam line): the seeds are started as above, carried
back to their first hit's surface (``from_first``, which is also how the layers a seed skips are searched, outward),
and navigation then goes back along the helix (negative paths) to the layers nearer the beam line, never past the
point of closest approach to it (the helix's other side).

A seed starts at its first hit with the triplet's parameters; the direction's uncertainty is 0.02 rad in psi and,
in theta, three times the scattering in a pixel layer at the seed's momentum plus 2 mrad (a steep track's theta
is far better known than its pT alone says).

Compiled (numba, the ``fast`` extra; `COMPILED`): steps 1-6 of all candidates of a part are one call
(`fast.advance`), candidate after candidate, and so is the start (`fast.start`); the parts of several threads run
side by side (the compiled code runs without the interpreter's lock), and only the pruning (7), which crosses the
parts, is NumPy. Without numba the NumPy steps run, each operation vectorised over a part's candidates; the
candidates are the same, to rounding (`tests/test_ckf_fast.py`).

Memory: the seeds of a round grow faster than the hits (240k in the first round at 149k hits, about 1.4 M at
300k), and a step makes several copies of its candidates (400 bytes each). So the seeds go in parts
(`SEED_CHUNK`) that step in lockstep, one part at a time (with more threads, as many parts side by side, each
thread a part); only step 7's merge looks at all parts at once, on their keys. The tracks are those of all seeds
taken whole (`tests/test_memory.py`), on any number of threads (`tests/test_ckf.py`).
"""

from __future__ import annotations

import numpy as np

from ...threads import current_threads, ordered_map
from . import fast
from .ambiguity import best_per_seed
from .geometry import Hits, Layers
from .helix import CURVATURE_PER_TESLA, _arcs, path_to_cylinder, propagate, short_step_cov, to_global, transport, wrap
from .seeding import Grid, grid_pair_blocks, highland

MAX_HITS = 32  # hit slots per candidate: more than any particle leaves on its way out
COMPILED = True  # with numba: `Finder.run` starts and steps candidates in compiled calls (`fast.start`, `.advance`)


class Candidates:
    """Track candidates as parallel arrays (a structure of arrays, so every step is vectorised)."""

    FIELDS = ("state", "cov", "barrel", "pos", "layer", "hits", "nh", "chi2", "holes", "seed")

    def __init__(self, **arrays):
        for name in self.FIELDS:
            setattr(self, name, arrays[name])

    def __len__(self) -> int:
        return len(self.seed)

    def take(self, index) -> Candidates:
        return Candidates(**{name: getattr(self, name)[index] for name in self.FIELDS})

    @staticmethod
    def concat(parts: list[Candidates]) -> Candidates:
        return Candidates(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in Candidates.FIELDS})


def add_scattering(cand: Candidates, lay: Layers, layer: np.ndarray, mass: float = 0.13957) -> None:
    """Multiple scattering in ``layer`` (per candidate) added to the covariances, in place."""
    t, k, psi, phi = cand.state[:, 3], cand.state[:, 4], cand.state[:, 2], cand.state[:, 0]
    sin_theta = 1.0 / np.sqrt(1.0 + t * t)
    # cosine of the incidence angle: on a cylinder the normal is radial, on a disk it is z
    cos_inc = np.where(lay.barrel[layer], sin_theta * np.abs(np.cos(psi - phi)), np.abs(t) * sin_theta)
    p = np.minimum(1.0 / np.maximum(np.abs(k), 1e-3), 1000.0) / sin_theta
    theta0 = highland(p, lay.x0[layer] / np.maximum(cos_inc, 0.05), mass)
    one_t2 = 1.0 + t * t
    cand.cov[:, 2, 2] += theta0**2 * one_t2
    cand.cov[:, 3, 3] += theta0**2 * one_t2**2


def update(state, cov, meas, var):
    """Kalman update with H = [1 0 0 0 0; 0 1 0 0 0]; returns (state, cov, chi2). phi residuals wrap."""
    res = meas - state[:, :2]
    res[:, 0] = wrap(res[:, 0])
    s = cov[:, :2, :2] + var
    det = s[:, 0, 0] * s[:, 1, 1] - s[:, 0, 1] * s[:, 1, 0]
    inv = np.empty_like(s)
    inv[:, 0, 0], inv[:, 1, 1] = s[:, 1, 1] / det, s[:, 0, 0] / det
    inv[:, 0, 1], inv[:, 1, 0] = -s[:, 0, 1] / det, -s[:, 1, 0] / det
    # r^T S^-1 r written out: einsum's sum for one candidate alone differs in the last bit from its sum for
    # several, and the tracks must not depend on how the candidates are grouped (this is its order for several)
    r0, r1 = res[:, 0], res[:, 1]
    chi2 = r0 * inv[:, 0, 0] * r0 + r0 * inv[:, 0, 1] * r1 + r1 * inv[:, 1, 0] * r0 + r1 * inv[:, 1, 1] * r1
    gain = cov[:, :, :2] @ inv  # (n, 5, 2)
    new_state = state + np.einsum("nij,nj->ni", gain, res)
    new_state[:, 0] = wrap(new_state[:, 0])
    new_state[:, 2] = wrap(new_state[:, 2])
    new_cov = cov - gain @ cov[:, :2, :]
    new_cov = 0.5 * (new_cov + np.transpose(new_cov, (0, 2, 1)))
    return new_state, new_cov, chi2


def chi2_of(state, cov, meas, var):
    res = meas - state[:, :2]
    res[:, 0] = wrap(res[:, 0])
    s = cov[:, :2, :2] + var
    det = s[:, 0, 0] * s[:, 1, 1] - s[:, 0, 1] * s[:, 1, 0]
    return (res[:, 0] ** 2 * s[:, 1, 1] - 2 * res[:, 0] * res[:, 1] * s[:, 0, 1] + res[:, 1] ** 2 * s[:, 0, 0]) / det


def next_layer(cand: Candidates, lay: Layers, field: float, inward: bool = False):
    """The next layer each candidate's helix crosses (-1: none) with the path length to it.

    ``inward``: the next layer back along the helix, towards the beam line (the path is then negative).
    """
    n = len(cand)
    if fast.HAVE_NUMBA:  # the same search compiled, one candidate at a time

        def arr(a, dtype=np.float64):
            return np.ascontiguousarray(a, dtype)

        return fast.next_layer(arr(cand.state), arr(cand.barrel, np.bool_), arr(cand.pos), arr(cand.layer, np.int64),
                               CURVATURE_PER_TESLA * field, arr(lay.barrel, np.bool_), arr(lay.position), arr(lay.lo),
                               arr(lay.hi), bool(inward))
    x, y, z = to_global(cand.state, cand.barrel, cand.pos)
    psi, t, k = cand.state[:, 2], cand.state[:, 3], cand.state[:, 4]
    h = -CURVATURE_PER_TESLA * field * k
    r = np.hypot(x, y)
    sign = -1.0 if inward else 1.0  # the direction of the path: the distances below are sign * s > 0
    best_s = np.full(n, np.inf)
    best = np.full(n, -1, np.int64)
    for L in np.flatnonzero(lay.barrel):
        ahead = lay.position[L] < r - 0.5 if inward else lay.position[L] > r + 0.5
        sel = np.flatnonzero(ahead & (cand.layer != L))
        if len(sel) == 0:
            continue
        s, ok = path_to_cylinder(x[sel], y[sel], psi[sel], h[sel], lay.position[L])
        zc = z[sel] + t[sel] * s
        s = sign * s
        good = ok & (s > 0) & (zc >= lay.lo[L]) & (zc <= lay.hi[L]) & (s < best_s[sel])
        best_s[sel[good]] = s[good]
        best[sel[good]] = L
    disks = np.flatnonzero(~lay.barrel)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = sign * (lay.position[disks][None, :] - z[:, None]) / t[:, None]
    ok = np.isfinite(s) & (s > 0) & (np.abs(h[:, None] * s) < 0.5 * np.pi) & (cand.layer[:, None] != disks[None, :])
    ok &= s < best_s[:, None]
    if inward:  # not past the point of closest approach to the beam line (the track's other side)
        ok &= s < (x * np.cos(psi) + y * np.sin(psi))[:, None]
    rows, cols = np.nonzero(ok)
    if len(rows):
        ss = s[rows, cols]
        sa, ca = _arcs(h[rows], sign * ss)
        c, sn = np.cos(psi[rows]), np.sin(psi[rows])
        rr = np.hypot(x[rows] + c * sa - sn * ca, y[rows] + sn * sa + c * ca)
        L = disks[cols]
        inside = (rr >= lay.lo[L]) & (rr <= lay.hi[L])
        rows, ss, L = rows[inside], ss[inside], L[inside]
        order = np.lexsort((ss, rows))
        rows, ss, L = rows[order], ss[order], L[order]
        first = np.ones(len(rows), bool)
        first[1:] = rows[1:] != rows[:-1]
        rows, ss, L = rows[first], ss[first], L[first]
        closer = ss < best_s[rows]
        best_s[rows[closer]] = ss[closer]
        best[rows[closer]] = L[closer]
    return best, best_s


class Finder:
    """The CKF over one event's hits; `run` follows seeds and returns the finished candidates."""

    def __init__(self, hits: Hits, lay: Layers, field: float = 2.0, chi2_max: float = 15.0, n_sigma: float = 5.0,
                 n_branches: int = 3, max_candidates: int = 3, max_holes: int = 2, overlaps: int = 2,
                 max_steps: int = 40, inward: bool = False, from_first: bool | None = None):
        self.hits, self.lay, self.field = hits, lay, field
        self.chi2_max, self.n_sigma = chi2_max, n_sigma
        self.n_branches, self.max_candidates, self.max_holes = n_branches, max_candidates, max_holes
        self.overlaps, self.max_steps = overlaps, max_steps
        self.inward = inward
        self.from_first = inward if from_first is None else from_first
        self._grids: dict[int, Grid] = {}
        self._flat: tuple | None = None  # `_compiled`'s arrays

    def grid(self, layer: int) -> Grid:
        if layer not in self._grids:
            idx = self.hits.in_layer(layer)
            width = max(20.0, 6.0 * float(np.sqrt(self.hits.var_max[layer, 1])))
            self._grids[layer] = Grid(self.hits.phi[idx], self.hits.meas[idx, 1], idx, width)
        return self._grids[layer]

    # ------------------------------------------------------------------ seeds

    def start(self, seeds: dict[str, np.ndarray]) -> Candidates:
        """Candidates from seeds: the state at the first hit, filtered through the second and third."""
        hits, lay = self.hits, self.lay
        trip = seeds["hits"]
        n = len(trip)
        b = trip[:, 0]
        state = np.column_stack([hits.meas[b, 0], hits.meas[b, 1], seeds["psi"], seeds["cot"], seeds["qpt"]])
        cov = np.zeros((n, 5, 5))
        cov[:, :2, :2] = hits.var[b]
        cov[:, 2, 2] = 0.02**2
        # theta: three times the scattering in a pixel layer at the seed's momentum, plus 2 mrad
        one_t2 = 1.0 + seeds["cot"] ** 2
        p = np.minimum(1.0 / np.maximum(np.abs(seeds["qpt"]), 1e-3), 1000.0) * np.sqrt(one_t2)
        cov[:, 3, 3] = ((3.0 * highland(p, 0.02 * np.sqrt(one_t2)) + 0.002) * one_t2) ** 2
        cov[:, 4, 4] = (0.3 * np.abs(seeds["qpt"]) + 0.05) ** 2
        layer = hits.layer[b]
        hit_rows = np.full((n, MAX_HITS), -1, np.int32)
        hit_rows[:, 0] = b
        cand = Candidates(state=state, cov=cov, barrel=lay.barrel[layer], pos=hits.surface[b], layer=layer,
                          hits=hit_rows, nh=np.ones(n, np.int64), chi2=np.zeros(n), holes=np.zeros(n, np.int64),
                          seed=np.arange(n))
        cand = self.overlap_all(cand)
        add_scattering(cand, lay, cand.layer)
        for j in (1, 2):
            hj = trip[cand.seed, j]
            lj = hits.layer[hj]
            st, cv, good, _ = transport(cand.state, cand.cov, cand.barrel, cand.pos, lay.barrel[lj],
                                        hits.surface[hj], self.field)
            st, cv, chi2 = update(st, cv, hits.meas[hj], hits.var[hj])
            good &= np.isfinite(chi2) & (chi2 < 2 * self.chi2_max)
            cand.state, cand.cov, cand.chi2 = st, cv, cand.chi2 + np.where(good, chi2, 0.0)
            cand.barrel, cand.pos, cand.layer = lay.barrel[lj], hits.surface[hj], lj
            cand.hits[np.arange(len(cand)), cand.nh] = hj
            cand.nh = cand.nh + 1
            cand = cand.take(np.flatnonzero(good))
            cand = self.overlap_all(cand)
            add_scattering(cand, lay, cand.layer)
        return cand

    def _back_to_first(self, cand: Candidates, first: np.ndarray) -> Candidates:
        """Started candidates carried back along their helices to their first hit's surface (``first``: its hit
        number), with the three hits' state (a negative path): where the search towards the beam line
        (``inward``), or through the layers between the seed's hits (outward), begins."""
        lay, hits = self.lay, self.hits
        layer = hits.layer[first]
        st, cv, ok, _ = transport(cand.state, cand.cov, cand.barrel, cand.pos, lay.barrel[layer], hits.surface[first],
                                  self.field)
        ok &= np.isfinite(st).all(axis=1)
        cand.state, cand.cov = st, cv
        cand.barrel, cand.pos, cand.layer = lay.barrel[layer], hits.surface[first], layer
        return cand.take(np.flatnonzero(ok))

    # ------------------------------------------------------------------ search

    def _pairs(self, cand: Candidates, layer: int, exclude_modules: np.ndarray | None = None):
        """(candidate, hit, predicted state on the hit's surface, chi2) for the hits in the window, leaving out
        hits on the modules of ``exclude_modules`` (n_candidates, k)."""
        hits, lay = self.hits, self.lay
        st, cv = cand.state, cand.cov
        if fast.HAVE_NUMBA:  # the same search compiled, one call (most searches hold a few candidates)
            grid = self.grid(layer)
            if grid.size == 0 or len(cand) == 0:
                return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 5)), np.zeros((0, 5, 5)), np.zeros(0)
            exclude = np.zeros((len(cand), 0), np.int64) if exclude_modules is None else exclude_modules
            return fast.layer_pairs(
                np.ascontiguousarray(st, np.float64), np.ascontiguousarray(cv, np.float64),
                np.ascontiguousarray(cand.barrel, np.bool_), np.ascontiguousarray(cand.pos, np.float64),
                bool(lay.barrel[layer]), float(lay.position[layer]), float(hits.offset[layer]),
                float(hits.var_max[layer, 0]), float(hits.var_max[layer, 1]), float(self.n_sigma),
                float(self.chi2_max), CURVATURE_PER_TESLA * self.field, grid.key, grid.index, grid.coord,
                float(grid.base), int(grid.n_bins), float(grid.bin_width), hits.surface, hits.meas, hits.var,
                hits.module, np.ascontiguousarray(exclude, np.int64))
        phi, w, psi, t = st[:, 0], st[:, 1], st[:, 2], st[:, 3]
        r = np.where(cand.barrel, cand.pos, w)
        # path to reach a hit off the current surface (hits spread about the layer's mean surface)
        off = hits.offset[layer] + np.abs(cand.pos - lay.position[layer])
        if lay.barrel[layer]:
            ds = off / np.maximum(np.abs(np.cos(psi - phi)), 0.1)
            m_phi, m_w = ds * np.abs(np.sin(psi - phi)) / np.maximum(r, 1.0), ds * np.abs(t)
        else:
            ds = off / np.maximum(np.abs(t), 0.05)
            m_phi, m_w = ds * np.abs(np.sin(psi - phi)) / np.maximum(r, 1.0), ds * np.abs(np.cos(psi - phi))
        vmax = hits.var_max[layer]
        half = self.n_sigma * np.sqrt(cv[:, 0, 0] + vmax[0]) + 1.2 * m_phi + 1e-4
        span = self.n_sigma * np.sqrt(cv[:, 1, 1] + vmax[1]) + 1.2 * m_w + 0.1
        out = []
        # in blocks: the (candidate, hit) pairs in the windows grow with the square of the hit density
        for ci, hi in grid_pair_blocks(phi, np.minimum(half, 0.5), w - span, w + span, self.grid(layer)):
            if exclude_modules is not None:
                keep = (exclude_modules[ci] != hits.module[hi][:, None]).all(axis=1)
                ci, hi = ci[keep], hi[keep]
            if len(ci) == 0:
                continue
            pred, ok, s = propagate(st[ci], cand.barrel[ci], cand.pos[ci], np.full(len(ci), lay.barrel[layer]),
                                    hits.surface[hi], self.field)
            pcov = short_step_cov(st[ci], cv[ci], cand.barrel[ci], cand.pos[ci], s, self.field)
            chi2 = chi2_of(pred, pcov, hits.meas[hi], hits.var[hi])
            good = ok & (chi2 < self.chi2_max)
            out.append((ci[good], hi[good], pred[good], pcov[good], chi2[good]))
        if not out:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 5)), np.zeros((0, 5, 5)), np.zeros(0)
        return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))

    def _apply(self, cand: Candidates, ci, hi, pred, pcov, layer: int) -> Candidates:
        """New candidates: candidate ci updated with hit hi (pred, pcov: its state and covariance carried to the
        hit's surface)."""
        new = cand.take(ci)
        new.hits = new.hits.copy()
        st, cv, chi2 = update(pred, pcov, self.hits.meas[hi], self.hits.var[hi])
        new.state, new.cov = st, cv
        new.chi2 = new.chi2 + chi2
        new.pos = self.hits.surface[hi]
        new.barrel = np.full(len(ci), self.lay.barrel[layer])
        new.layer = np.full(len(ci), layer)
        slot = np.minimum(new.nh, MAX_HITS - 1)
        new.hits[np.arange(len(ci)), slot] = hi
        new.nh = np.minimum(new.nh + 1, MAX_HITS)
        return new

    def _best_per(self, ci, chi2, limit: int):
        """Indices of the ``limit`` smallest chi2 per candidate ci."""
        order = np.lexsort((chi2, ci))
        ci_s = ci[order]
        first = np.searchsorted(ci_s, ci_s, side="left")
        rank = np.arange(len(ci_s)) - first
        return order[rank < limit]

    def overlap(self, cand: Candidates, layer: int) -> Candidates:
        """Candidates just updated on ``layer`` take the best hit of an overlapping module too, if any.

        The modules of the candidate's last hits (those on this layer) are excluded, so no hit is taken twice.
        """
        for j in range(self.overlaps):
            last = cand.hits[np.arange(len(cand))[:, None], np.maximum(cand.nh[:, None] - 1 - np.arange(j + 1), 0)]
            mods = self.hits.module[last]
            oc, oh, opred, ocov, ochi2 = self._pairs(cand, layer, exclude_modules=mods)
            if len(oc) == 0:
                break
            pick = self._best_per(oc, ochi2, 1)
            more = self._apply(cand, oc[pick], oh[pick], opred[pick], ocov[pick], layer)
            rest = np.ones(len(cand), bool)
            rest[oc[pick]] = False
            cand = Candidates.concat([cand.take(np.flatnonzero(rest)), more])
        return cand

    def overlap_all(self, cand: Candidates) -> Candidates:
        """`overlap` for candidates on different layers (the seeds' hits)."""
        parts = [self.overlap(cand.take(np.flatnonzero(cand.layer == L)), int(L)) for L in np.unique(cand.layer)]
        return Candidates.concat(parts) if parts else cand

    def step_layer(self, cand: Candidates, layer: int) -> Candidates:
        """Search, branch, update and add the layer's scattering for candidates predicted on ``layer``."""
        ci, hi, pred, pcov, chi2 = self._pairs(cand, layer)
        parts = []
        if len(ci):
            pick = self._best_per(ci, chi2, self.n_branches)
            upd = self._apply(cand, ci[pick], hi[pick], pred[pick], pcov[pick], layer)
            parts.append(self.overlap(upd, layer))
        missed = np.ones(len(cand), bool)
        missed[ci] = False
        if missed.any():
            hole = cand.take(np.flatnonzero(missed))
            hole.holes = hole.holes + 1
            hole.layer = np.full(len(hole), layer)
            parts.append(hole)
        out = Candidates.concat(parts) if len(parts) > 1 else parts[0]
        add_scattering(out, self.lay, out.layer)
        return out

    def prune(self, cand: Candidates) -> Candidates:
        """Candidates that end on the same two hits (one particle seeded twice) merge into the best of them;
        then at most ``max_candidates`` per seed, the best by hits and chi2."""
        return cand.take(self._prune_index(self._last_two(cand), cand.nh, cand.chi2, cand.seed))

    def _last_two(self, cand: Candidates) -> np.ndarray:
        rows = np.arange(len(cand))
        return cand.hits[rows, cand.nh - 1].astype(np.int64) * len(self.hits) + cand.hits[rows, cand.nh - 2]

    def _prune_index(self, last, nh, chi2, seed) -> np.ndarray:
        """The rows `prune` keeps, ascending."""
        order = np.lexsort((chi2, -nh, last))
        first = np.ones(len(order), bool)
        first[1:] = last[order[1:]] != last[order[:-1]]
        kept = np.sort(order[first])
        order = np.lexsort((chi2[kept], -nh[kept], seed[kept]))
        seed = seed[kept][order]
        first = np.searchsorted(seed, seed, side="left")
        return kept[np.sort(order[(np.arange(len(seed)) - first) < self.max_candidates])]

    def _prune_parts(self, parts: list[Candidates]) -> list[Candidates]:
        """`prune` over the union of ``parts`` (the merge crosses parts; a seed's candidates are in one part),
        applied part by part: only the keys of the union are made whole."""
        keep = self._prune_index(*(np.concatenate(k) for k in zip(*[(self._last_two(p), p.nh, p.chi2, p.seed)
                                                                     for p in parts], strict=True)))
        bounds = np.cumsum([0] + [len(p) for p in parts])
        cut = np.searchsorted(keep, bounds)
        out = [p.take(keep[a:b] - lo) for p, a, b, lo in zip(parts, cut[:-1], cut[1:], bounds[:-1], strict=True)]
        return [p for p in out if len(p)]

    def _advance(self, active: Candidates) -> tuple[Candidates, list[Candidates]]:
        """One step of ``active``: to the next layer, search, branch, update (not pruned). Returns the candidates
        that go on and those that finished: left the detector, were lost or have too many holes."""
        finished: list[Candidates] = []
        nl, _ = next_layer(active, self.lay, self.field, self.inward)
        done = nl < 0
        if done.any():
            finished.append(active.take(np.flatnonzero(done)))
            active, nl = active.take(np.flatnonzero(~done)), nl[~done]
        if len(active) == 0:
            return active, finished
        st, cv, ok, _ = transport(active.state, active.cov, active.barrel, active.pos, self.lay.barrel[nl],
                                  self.lay.position[nl], self.field)
        lost = ~ok
        if lost.any():
            finished.append(active.take(np.flatnonzero(lost)))
        keep = np.flatnonzero(ok)
        active = active.take(keep)
        active.state, active.cov = st[keep], cv[keep]
        active.barrel, active.pos = self.lay.barrel[nl[keep]], self.lay.position[nl[keep]]
        nl = nl[keep]
        parts = [self.step_layer(active.take(np.flatnonzero(nl == L)), int(L)) for L in np.unique(nl)]
        if not parts:
            return active, finished
        active = Candidates.concat(parts)
        dead = active.holes > self.max_holes
        if dead.any():
            finished.append(active.take(np.flatnonzero(dead)))
            active = active.take(np.flatnonzero(~dead))
        return active, finished

    def run(self, seeds: dict[str, np.ndarray], threads: int | None = None) -> Candidates:
        """The finished candidates of ``seeds`` (candidate.seed: the row in ``seeds``), at least the best of each
        seed (most hits, then smallest chi2; `ambiguity.best_per_seed` picks it).

        Memory: the seeds are started in parts of at most `SEED_CHUNK` and each part's candidates advance
        together, one part at a time, so the step's temporaries are a part's; only the merge of `prune` sees all
        parts (a few keys each). The finished candidates are cut to the best of each seed whenever they pass
        `FINISHED_CUT`. ``threads`` (None: `deepreco.threads.current_threads`): with more than one, the seeds
        are cut into at least that many parts (of `MIN_PART` seeds or more), advanced side by side on as many
        threads (the compiled search and transport release the interpreter). The tracks do not depend on the
        parts (the candidates are the same, in another order), so neither on the threads.
        """
        n = len(seeds["hits"])
        threads = current_threads() if threads is None else max(1, threads)
        compiled = fast.HAVE_NUMBA and COMPILED
        size = SEED_CHUNK if threads == 1 else min(SEED_CHUNK, max(MIN_PART, -(-n // threads)))
        if threads > 1 or compiled:
            for layer in range(len(self.lay.barrel)):  # made now, not by two threads at once
                self.grid(layer)
            if compiled:
                self._compiled()

        # a finder with a start of its own (`deepcore.tracking`'s, from seed parameters) starts in it
        compiled_start = compiled and type(self).start is Finder.start

        def started(a: int) -> Candidates:
            part = (self._start_compiled if compiled_start else self.start)({k: v[a:a + size]
                                                                              for k, v in seeds.items()})
            part.seed = part.seed + a
            if self.from_first and not compiled_start:  # the compiled start carries them back itself
                part = self._back_to_first(part, seeds["hits"][part.seed, 0])
            return part

        advance = self._advance_compiled if compiled else self._advance

        active = [p for p in ordered_map(started, range(0, n, size), threads) if len(p)]
        finished: list[Candidates] = []
        for _step in range(self.max_steps):
            if not active:
                break
            moved = []
            for part, done in ordered_map(advance, _popped(active), threads):  # old parts freed as they go
                finished += done
                if len(part):
                    moved.append(part)
            finished = _cut_finished(finished)
            if not moved:
                break
            active = self._prune_parts(moved)
        finished += active
        if not finished:
            return self.start({k: v[:0] for k, v in seeds.items()})
        return Candidates.concat(finished)

    def _compiled(self) -> tuple:
        """The hits, the layers and every layer's search grid as flat arrays, for `fast.start` and `fast.advance`
        (made once)."""
        if self._flat is None:
            hits, lay = self.hits, self.lay
            grids = [self.grid(layer) for layer in range(len(lay.barrel))]
            start = np.cumsum([0] + [3 * g.size for g in grids])

            def joined(name, dtype):
                parts = [getattr(g, name) for g in grids if g.size]
                return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), dtype)

            def arr(a, dtype=np.float64):
                return np.ascontiguousarray(a, dtype)

            self._flat = (arr(hits.meas), arr(hits.var), arr(hits.surface), arr(hits.module, np.int64),
                          arr(hits.layer, np.int64), arr(lay.barrel, np.bool_), arr(lay.position), arr(lay.lo),
                          arr(lay.hi), arr(lay.x0), arr(hits.offset), arr(hits.var_max),
                          joined("key", np.float64), joined("index", np.int64), joined("coord", np.float64),
                          arr(start, np.int64), arr([g.base if g.size else 0.0 for g in grids]),
                          arr([g.n_bins if g.size else 0 for g in grids], np.int64),
                          arr([g.bin_width for g in grids]))
        return self._flat

    def _start_compiled(self, seeds: dict[str, np.ndarray]) -> Candidates:
        """`start` (and `_back_to_first` when ``from_first``) by `fast.start`."""
        ok, st, cv, info, hit_rows = fast.start(
            np.ascontiguousarray(seeds["hits"], np.int64),
            *(np.ascontiguousarray(seeds[k], np.float64) for k in ("psi", "cot", "qpt")), self._compiled(),
            CURVATURE_PER_TESLA * self.field, float(self.chi2_max), float(self.n_sigma), int(self.overlaps),
            bool(self.from_first), 0.13957, MAX_HITS)
        rows = np.flatnonzero(ok)
        return _from_info(st[rows], cv[rows], info[rows], hit_rows[rows], rows)

    def _advance_compiled(self, active: Candidates) -> tuple[Candidates, list[Candidates]]:
        """`_advance` by `fast.advance`: the same candidates (in another order)."""
        info = np.column_stack([active.barrel, active.pos, active.layer, active.nh, active.chi2,
                                active.holes]).astype(np.float64)
        out = fast.advance(np.ascontiguousarray(active.state, np.float64), np.ascontiguousarray(active.cov, np.float64),
                           info, np.ascontiguousarray(active.hits, np.int32), self._compiled(),
                           CURVATURE_PER_TESLA * self.field, float(self.chi2_max), float(self.n_sigma),
                           int(self.n_branches), int(self.max_holes), int(self.overlaps), bool(self.inward), 0.13957,
                           MAX_HITS)
        moved = _from_info(*out[1:5], active.seed[out[0]])
        done = _from_info(*out[6:10], active.seed[out[5]])
        return moved, [done] if len(done) else []


def _from_info(state, cov, info, hit_rows, seed) -> Candidates:
    """Candidates from the compiled filter's rows (`fast.start`, `fast.advance`)."""
    return Candidates(state=state, cov=cov, barrel=info[:, 0] > 0.5, pos=info[:, 1], layer=info[:, 2].astype(np.int64),
                      hits=hit_rows, nh=info[:, 3].astype(np.int64), chi2=info[:, 4],
                      holes=info[:, 5].astype(np.int64), seed=np.asarray(seed, np.int64))


def _popped(parts: list):
    """The items of ``parts``, each taken out of the list as it is handed on."""
    while parts:
        yield parts.pop(0)


SEED_CHUNK = 1 << 15  # seeds started and advanced together (a part): bounds the temporaries of a step
MIN_PART = 1 << 10  # the fewest seeds of a part when the seeds are cut for threads
FINISHED_CUT = 1 << 18  # finished candidates held before they are cut to the best of each seed


def _cut_finished(finished: list[Candidates]) -> list[Candidates]:
    """The best finished candidate of each seed, when there are more than `FINISHED_CUT`; the rows kept stay in
    their order, so that the best of each seed (the first of the best on a tie) is the one it was."""
    if sum(len(f) for f in finished) <= FINISHED_CUT:
        return finished
    cand = Candidates.concat(finished)
    return [cand.take(np.sort(best_per_seed(cand.seed, cand.nh, cand.chi2)))]

"""Track building from any seed list (DeepCore's or the pair seeds): the ckf's combinatorial Kalman filter outward
through pixel layers 3-4 and the strip barrel (`strips`), then a final fit and a selection.

Reuse. The finder is `deepreco.reconstruct.ckf.kalman.Finder` (navigation, prediction, gating, branching,
scattering, pruning) on this detector's surfaces: every layer is a cylinder (`Layers` built here: the seeds'
layer 2, pixel layers 3-4, the 10 strip layers) and every hit a (phi, z) measurement on the cylinder through it
(`Hits` built here). A strip hit of a mono layer measures z only as its sensor's centre, with the sensor length
/ sqrt(12) as its error, so it is a 1-D r-phi measurement for the filter; a stereo layer's matched hit has the
pair's (phi, z) covariance. Only the start differs from the ckf's (which starts from three hits): a seed is a
point on layer 2 with a direction and 1 / pT but no charge, so each seed starts two candidates, q = +1 and -1,
each on a pseudo-hit of its own (the seed's point, with the seed's errors, `seeds.SIGMA`), and the limits on
candidates count both together (CMS's limits, per seed).

The start's uncertainty: the seed's point with its errors, the direction within 0.002 rad and eta 0.002, 1 / pT
within 0.15 + 0.3 |q/pT|, and on top ``seed_qpt_sigma`` (0.5 GeV^-1) along the line a track from the beam line
follows, where a wrong curvature comes with the direction wrong by -r c B / 2 times it (0.039 rad per GeV^-1 on
layer 2). DeepCore's network reads a 1-1.5 GeV track's curvature as a much stiffer track's and its direction as
such a track's, and without that term none of the tuning events' 0.9-1.5 GeV tracks became a track (issue 26,
`benchmarks/deepcore_tracks.py --tune-start`); the filter fixes the curvature with layers 3 and 4. The value
was chosen on 40 tuning events (seeds 500,000 onwards, `benchmarks/deepcore_tracks.py --tune-start 40`) for
both seed lists together: the efficiency of DeepCore's / the K-means pairs' tracks 0.811 / 0.815 without it,
0.826 / 0.825 at 0.2, 0.823 / 0.838 at 0.5 (0.5 and 0.7 tie on the sum; 0.5 keeps a 1 GeV track within two
sigma).

Limits (CMS-like, `BuildConfig`): at most ``max_candidates`` (5) candidates per seed, a hit taken when its chi2
is below ``chi2_max`` (30), at most ``max_holes`` (1) layers crossed without a hit; per seed the best candidate
(most hits, then smallest chi2), then shared hits resolved greedily across seeds (`ckf.ambiguity.resolve`: a
duplicate seed's track keeps almost none of its hits and goes).

Final fit: a Kalman filter run inward over each kept track's hits (from the finder's state at its last hit, its
covariance times 100, as `ckf.fit` does), the scattering of each layer added as process noise; its chi2 (2 per
hit, ndf = 2 n - 5) and its state at the innermost hit are the track's. A hit that adds more than
``outlier_chi2`` (9) to the chi2 goes, the worst of a track first, at most two a track and never below
``min_hits``, and the track is fitted again: in TeV jet cores the tracks that took a neighbour's hit or two were
the fakes of every seed list (associated with no particle at chi2 25-200, `benchmarks/deepcore_tracks.py
--fakes`). Chosen on the 40 tuning events (`benchmarks/deepcore_tracks.py --tune-outliers 40`).
Selection: at least ``min_hits`` hits of
which ``min_strip_hits`` in the strips, and chi2 / ndf below ``max_chi2_ndf``.

Material: the strip layers' X0 (`StripBarrel.x0`); the pixel layers have none, as in the pixel simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ..errors import DeepRecoError
from ..reconstruct.ckf.ambiguity import best_per_seed, resolve
from ..reconstruct.ckf.geometry import Hits, Layers
from ..reconstruct.ckf.helix import CURVATURE_PER_TESLA, transport
from ..reconstruct.ckf.kalman import MAX_HITS, Candidates, Finder, add_scattering, update
from .detector import PixelBarrel
from .events import JetEvent
from .seeds import SIGMA
from .strips import StripBarrel

__all__ = ["REF_COLUMNS", "BuildConfig", "build_tracks", "cov_columns"]

SEED_LAYER = 1  # 0-based pixel layer the seeds sit on
PIXEL_LAYERS = (2, 3)  # the pixel layers outside it
SEED_COLUMNS = ("x", "y", "z", "phi", "eta", "inv_pt")
#: the fitted track state on the cylinder r = radius of the seeds' layer: azimuth of the point, z [mm], azimuth of
#: the direction, cot(theta), q / pT [1/GeV] (`reconstruct.ckf.helix`'s barrel parameters)
REF_COLUMNS = ("ref_phi", "ref_z", "ref_psi", "ref_cot", "ref_qpt")


def cov_columns() -> list[str]:
    """Names of the 15 independent entries of the reference state's covariance, cov_ij with i <= j."""
    return [f"cov_{i}{j}" for i in range(5) for j in range(i, 5)]


@dataclass(frozen=True)
class BuildConfig:
    """The limits of track building and selection (see the module docstring)."""

    max_candidates: int = 5
    chi2_max: float = 30.0
    max_holes: int = 1
    n_sigma: float = 5.0
    min_hits: int = 8
    min_strip_hits: int = 5
    max_chi2_ndf: float = 5.0
    seed_qpt_sigma: float = 0.5
    outlier_chi2: float = 9.0

    def check(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            ok = isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
            low = 0 if f.name in ("max_holes", "seed_qpt_sigma", "outlier_chi2") else 1e-12
            if not ok or v < low or (f.type == "int" and v != int(v)):
                raise DeepRecoError(f"track building: {f.name} must be a positive number, got {v!r}")


class _SeedFinder(Finder):
    """The ckf's finder, started from seed parameters (two charge hypotheses per seed) rather than hit triplets."""

    qpt_sigma = 0.0  # extra 1/pT uncertainty along a prompt track's psi-qpt line (BuildConfig.seed_qpt_sigma)

    def start(self, seeds: dict[str, np.ndarray]) -> Candidates:
        b = seeds["hits"]
        n = len(b)
        state = np.column_stack([self.hits.meas[b, 0], self.hits.meas[b, 1], seeds["psi"], seeds["cot"],
                                 seeds["qpt"]])
        cov = np.zeros((n, 5, 5))
        cov[:, :2, :2] = self.hits.var[b]
        cov[:, 2, 2] = SIGMA["phi"] ** 2
        # d cot(theta) / d eta = cosh(eta)
        cov[:, 3, 3] = (SIGMA["eta"] * np.sqrt(1 + seeds["cot"] ** 2)) ** 2
        cov[:, 4, 4] = (SIGMA["inv_pt"] + 0.3 * np.abs(seeds["qpt"])) ** 2
        if self.qpt_sigma > 0:
            # a track from the beam line bends by psi - phi = -r c B / 2 x q/pT at radius r: a curvature the seed
            # got wrong comes with its direction wrong by that much, so the extra variance lies along that line
            v = np.zeros((n, 5))
            v[:, 2] = -0.5 * self.hits.surface[b] * CURVATURE_PER_TESLA * self.field
            v[:, 4] = 1.0
            cov += self.qpt_sigma ** 2 * v[:, :, None] * v[:, None, :]
        rows = np.full((n, MAX_HITS), -1, np.int32)
        rows[:, 0] = b
        return Candidates(state=state, cov=cov, barrel=np.ones(n, bool), pos=self.hits.surface[b],
                          layer=np.zeros(n, np.int64), hits=rows, nh=np.ones(n, np.int64), chi2=np.zeros(n),
                          holes=np.zeros(n, np.int64), seed=np.arange(n))

    def _prune_index(self, last, nh, chi2, seed):
        # rows 2 i and 2 i + 1 are seed i's two charges: the candidate limit is per seed
        return super()._prune_index(last, nh, chi2, seed // 2)


def _layers(pix: PixelBarrel, strip: StripBarrel) -> Layers:
    radii = np.array([pix.radii[SEED_LAYER], *(pix.radii[i] for i in PIXEL_LAYERS), *strip.radii])
    half = np.array([pix.half_v] * (1 + len(PIXEL_LAYERS)) + list(strip.half_z))
    x0 = np.array([0.0] * (1 + len(PIXEL_LAYERS)) + list(strip.x0))
    n = len(radii)
    return Layers(volume=np.zeros(n, np.int64), layer=np.arange(n), barrel=np.ones(n, bool), position=radii,
                  lo=-half, hi=half, x0=x0, pixel=np.arange(n) <= len(PIXEL_LAYERS))


def _hits(x, y, meas, var, layer, module, positions) -> Hits:
    n_layers = len(positions)
    r, phi = np.hypot(x, y), np.arctan2(y, x)
    order = np.lexsort((phi, layer))
    start = np.searchsorted(layer[order], np.arange(n_layers + 1))
    offset, var_max = np.zeros(n_layers), np.zeros((n_layers, 2))
    if len(x):
        # the layer's position is its mean radius; a hit on a staggered ladder is a few mm off it
        np.maximum.at(offset, layer, np.abs(r - positions[layer]))
        np.maximum.at(var_max, layer, np.column_stack([var[:, 0, 0], var[:, 1, 1]]))
    return Hits(hit_id=np.arange(len(x)), x=x, y=y, z=meas[:, 1], r=r, phi=phi, layer=layer, module=module,
                meas=meas, var=var, surface=r, order=order, start=start, offset=offset, var_max=var_max)


def _check_seeds(seeds: pd.DataFrame) -> None:
    if not isinstance(seeds, pd.DataFrame):
        raise DeepRecoError(f"track building: the seeds must be a table, got {type(seeds).__name__}")
    missing = [c for c in SEED_COLUMNS if c not in seeds.columns]
    if missing:
        raise DeepRecoError(f"track building: the seeds have no column {', '.join(missing)}")
    values = seeds[list(SEED_COLUMNS)].to_numpy(np.float64)
    if not np.isfinite(values).all():
        raise DeepRecoError("track building: the seeds' x, y, z, phi, eta, inv_pt must be finite")
    if (values[:, 5] < 0).any():
        raise DeepRecoError("track building: the seeds' inv_pt must not be negative (1 / pT, without charge)")


def cluster_particles(event: JetEvent) -> np.ndarray:
    """Per cluster, the particle that gave it the most charge (its truth, for the evaluation)."""
    px = event.pixels
    n = len(event.clusters)
    if len(px) == 0:
        return np.zeros(n, np.int64)
    g = px.groupby(["cluster", "particle_id"], sort=False)["charge"].sum().reset_index()
    g = g.sort_values(["cluster", "charge"], ascending=[True, False], kind="stable").drop_duplicates("cluster")
    out = np.zeros(n, np.int64)
    out[g["cluster"].to_numpy(np.int64)] = g["particle_id"].to_numpy(np.int64)
    return out


def build_tracks(event: JetEvent, strip_table: pd.DataFrame, seeds: pd.DataFrame, config: BuildConfig | None = None,
                 pixel: PixelBarrel | None = None, strip: StripBarrel | None = None):
    """Tracks of ``seeds`` (table with x, y, z on layer 2 [mm], phi, eta of the direction there, inv_pt [1/GeV])
    through the event's pixel clusters of layers 3-4 and its strip hits (`strips.strip_hits`).

    Returns (tracks, track_hits): tracks has track_id, seed (row in ``seeds``), n_hits, n_pixel, n_strip, chi2,
    ndf, pt, sigma_pt, q, eta, phi (at the innermost hit), particle_id and purity (the particle with most of its
    hits, and their fraction), the fitted state on the seeds' layer (`REF_COLUMNS`) and its covariance
    (`cov_columns`); track_hits has track_id, kind (``pixel``: row in ``event.clusters``; ``strip``: row in
    ``strip_table``), index, particle_id.
    """
    config = config or BuildConfig()
    config.check()
    _check_seeds(seeds)
    missing = [c for c in ("layer", "particle_id", "phi", "zm", "var_phi", "var_z", "cov_phi_z")
               if c not in strip_table.columns]
    if missing:
        raise DeepRecoError(f"track building: the strip hits have no column {', '.join(missing)}")
    pixel, strip = pixel or PixelBarrel(), strip or StripBarrel()
    lay = _layers(pixel, strip)

    # hits: pixel clusters of layers 3-4, strip hits, then two pseudo-hits per seed (the seed's point)
    cl = event.clusters
    prow = np.flatnonzero(np.isin(cl["layer"].to_numpy(), PIXEL_LAYERS))
    pl = cl["layer"].to_numpy()[prow]
    px, py, pz = (cl[c].to_numpy(np.float64)[prow] for c in ("x", "y", "z"))
    pvar = np.zeros((len(prow), 2, 2))
    pvar[:, 0, 0] = pixel.pitch_u ** 2 / 12 / np.hypot(px, py) ** 2
    pvar[:, 1, 1] = pixel.pitch_v ** 2 / 12
    s = strip_table
    sphi = s["phi"].to_numpy(np.float64)
    sr = np.asarray(strip.radii)[s["layer"].to_numpy(np.int64)]
    svar = np.zeros((len(s), 2, 2))
    svar[:, 0, 0], svar[:, 1, 1] = s["var_phi"].to_numpy(), s["var_z"].to_numpy()
    svar[:, 0, 1] = svar[:, 1, 0] = s["cov_phi_z"].to_numpy()
    n_seed = len(seeds)
    sx, sy, sz = (np.repeat(seeds[c].to_numpy(np.float64), 2) for c in ("x", "y", "z"))
    seed_r = np.hypot(sx, sy)
    qvar = np.zeros((2 * n_seed, 2, 2))
    qvar[:, 0, 0] = SIGMA["xy"] ** 2 / np.maximum(seed_r, 1.0) ** 2
    qvar[:, 1, 1] = SIGMA["z"] ** 2
    x = np.concatenate([px, sr * np.cos(sphi), sx])
    y = np.concatenate([py, sr * np.sin(sphi), sy])
    meas = np.column_stack([np.arctan2(y, x), np.concatenate([pz, s["zm"].to_numpy(np.float64), sz])])
    var = np.concatenate([pvar, svar, qvar])
    n_pix, n_strip = len(prow), len(s)
    layer = np.concatenate([np.searchsorted(PIXEL_LAYERS, pl) + 1, s["layer"].to_numpy(np.int64) + 3,
                            np.zeros(2 * n_seed, np.int64)])
    # modules: a pixel ladder (its overlapping neighbour may give a second hit); a strip layer is one module, so a
    # cylinder gives one hit per layer; each pseudo-hit its own
    module = np.concatenate([cl["layer"].to_numpy(np.int64)[prow] * 1000 + cl["ladder"].to_numpy(np.int64)[prow],
                             -1 - s["layer"].to_numpy(np.int64), -1000 - np.arange(2 * n_seed)])
    hits = _hits(x, y, meas, var, layer, module, lay.position)
    truth = np.concatenate([cluster_particles(event)[prow], s["particle_id"].to_numpy(np.int64),
                            np.zeros(2 * n_seed, np.int64)])

    finder = _SeedFinder(hits, lay, field=pixel.field_t, chi2_max=config.chi2_max, n_sigma=config.n_sigma,
                         n_branches=config.max_candidates, max_candidates=config.max_candidates,
                         max_holes=config.max_holes, overlaps=1, max_steps=2 * len(lay))
    finder.qpt_sigma = float(config.seed_qpt_sigma)
    inv_pt = np.repeat(seeds["inv_pt"].to_numpy(np.float64), 2)
    charge = np.tile([1.0, -1.0], n_seed)
    cand = finder.run({"hits": n_pix + n_strip + np.arange(2 * n_seed), "psi": np.repeat(seeds["phi"].to_numpy(
        np.float64), 2), "cot": np.sinh(np.repeat(seeds["eta"].to_numpy(np.float64), 2)), "qpt": charge * inv_pt})

    # the best candidate per seed, then shared hits resolved across seeds; the pseudo-hit (slot 0) left out
    best = best_per_seed(cand.seed // 2, cand.nh, cand.chi2)
    cand = cand.take(best)
    rows, nh = cand.hits[:, 1:], cand.nh - 1
    ti, hi = resolve(rows, nh, cand.chi2, len(hits), min_hits=config.min_hits, min_free=0.5)
    return _fit_and_select(cand, ti, hi, hits, lay, finder.field, config, n_pix, prow, truth,
                           pixel.radii[SEED_LAYER])


MAX_OUTLIERS = 2  # hits a track may lose to BuildConfig.outlier_chi2


def _inward_fit(c, grid, hits, lay, field):
    """The Kalman filter inward over each track's hits (rows of ``grid``, outermost first, -1 = none), from the
    finder's state at its last hit with its covariance times 100: the state and covariance at the innermost hit,
    the surface there, chi2, whether the fit held, and each hit's chi2 increment (NaN where none)."""
    state, cov, pos = c.state.copy(), 100.0 * c.cov, c.pos.copy()
    chi2 = np.zeros(len(grid))
    ok = np.ones(len(grid), bool)
    per_hit = np.full(grid.shape, np.nan)
    for j in range(grid.shape[1]):
        sel = np.flatnonzero((grid[:, j] >= 0) & ok)
        h = grid[sel, j]
        st, cv, good, _ = transport(state[sel], cov[sel], np.ones(len(sel), bool), pos[sel],
                                    np.ones(len(sel), bool), hits.surface[h], field)
        st, cv, dchi2 = update(st, cv, hits.meas[h], hits.var[h])
        good &= np.isfinite(dchi2)
        ok[sel[~good]] = False
        per_hit[sel, j] = dchi2
        state[sel], cov[sel], pos[sel], chi2[sel] = st, cv, hits.surface[h], chi2[sel] + np.where(good, dchi2, 0)
        scat = SimpleNamespace(state=state[sel], cov=cov[sel])
        add_scattering(scat, lay, hits.layer[h])
        cov[sel] = scat.cov
    return state, cov, pos, chi2, ok, per_hit


def _fit_and_select(cand, ti, hi, hits, lay, field, config, n_pix, prow, truth, ref_radius):
    kept = np.unique(ti)
    empty = (pd.DataFrame({c: pd.Series(dtype=float) for c in (
        "track_id", "seed", "n_hits", "n_pixel", "n_strip", "chi2", "ndf", "pt", "sigma_pt", "q", "eta", "phi",
        "particle_id", "purity", *REF_COLUMNS, *cov_columns())}),
        pd.DataFrame({"track_id": [], "kind": [], "index": [], "particle_id": []}))
    if len(kept) == 0:
        return empty
    pos_in = np.searchsorted(kept, ti)
    # each track's hits, outermost first (the inward pass)
    order = np.lexsort((-hits.r[hi], pos_in))
    ti_s, hi_s = pos_in[order], hi[order]
    n = np.bincount(ti_s, minlength=len(kept))
    slot = np.arange(len(ti_s)) - np.repeat(np.cumsum(n) - n, n)
    grid = np.full((len(kept), n.max()), -1)
    grid[ti_s, slot] = hi_s
    c = cand.take(kept)
    state, cov, pos, chi2, ok, per_hit = _inward_fit(c, grid, hits, lay, field)
    if config.outlier_chi2 > 0:
        # the worst hit of a track whose hit adds more than outlier_chi2 goes, and the track is fitted again, while
        # it keeps min_hits
        for _ in range(MAX_OUTLIERS):
            worst = np.argmax(np.where(grid >= 0, per_hit, -np.inf), axis=1)
            bad = np.flatnonzero((per_hit[np.arange(len(kept)), worst] > config.outlier_chi2)
                                 & ((grid >= 0).sum(1) > config.min_hits))
            if len(bad) == 0:
                break
            grid[bad, worst[bad]] = -1
            state, cov, pos, chi2, ok, per_hit = _inward_fit(c, grid, hits, lay, field)
        ti_s, slot = np.nonzero(grid >= 0)
        hi_s = grid[ti_s, slot]
        n = np.bincount(ti_s, minlength=len(kept))
    ndf = 2 * n - 5
    n_pixel = np.bincount(ti_s, weights=hi_s < n_pix, minlength=len(kept)).astype(np.int64)
    pid = truth[hi_s]
    # the particle with most of the track's hits
    pairs = pd.DataFrame({"t": ti_s, "p": pid}).value_counts().reset_index()
    pairs = pairs.sort_values(["t", "count", "p"], ascending=[True, False, True], kind="stable")
    pairs = pairs.drop_duplicates("t").set_index("t")
    k = state[:, 4]
    # inward to the seeds' layer, no material in between (the pixel layers have none); NaN where it fails
    every = np.ones(len(kept), bool)
    ref, ref_cov, ref_ok, _ = transport(state, cov, every, pos, every, np.full(len(kept), float(ref_radius)), field)
    ref[~ref_ok] = np.nan
    iu, ju = np.triu_indices(5)
    tracks = pd.DataFrame({
        "track_id": np.arange(len(kept)), "seed": c.seed // 2, "n_hits": n, "n_pixel": n_pixel,
        "n_strip": n - n_pixel, "chi2": chi2, "ndf": ndf, "pt": 1.0 / np.maximum(np.abs(k), 1e-9),
        "sigma_pt": np.sqrt(np.maximum(cov[:, 4, 4], 0)) / np.maximum(k * k, 1e-18),
        "q": np.sign(k).astype(np.int64), "eta": np.arcsinh(state[:, 3]), "phi": state[:, 2],
        "particle_id": pairs["p"].reindex(np.arange(len(kept))).to_numpy(np.int64),
        "purity": (pairs["count"].reindex(np.arange(len(kept))) / n).to_numpy(),
        **{c: ref[:, i] for i, c in enumerate(REF_COLUMNS)},
        **{c: ref_cov[:, i, j] for c, i, j in zip(cov_columns(), iu, ju, strict=True)}})
    select = (ok & (n >= config.min_hits) & (tracks["n_strip"].to_numpy() >= config.min_strip_hits)
              & (chi2 / np.maximum(ndf, 1) < config.max_chi2_ndf))
    if not select.any():
        return empty
    new_id = np.cumsum(select) - 1
    tracks = tracks[select].reset_index(drop=True)
    tracks["track_id"] = np.arange(len(tracks))
    m = select[ti_s]
    is_pix = hi_s[m] < n_pix
    index = np.where(is_pix, prow[np.minimum(hi_s[m], len(prow) - 1)] if len(prow) else 0, hi_s[m] - n_pix)
    track_hits = pd.DataFrame({"track_id": new_id[ti_s[m]], "kind": np.where(is_pix, "pixel", "strip"),
                               "index": index, "particle_id": pid[m]})
    return tracks, track_hits

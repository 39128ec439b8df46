"""The classical baseline: triplet seeding, a combinatorial Kalman filter, greedy ambiguity resolution.

The chain of a classical tracker (ATLAS, CMS, ACTS), vectorised with NumPy over all candidates of an event:

- `seeding`: triplets on the pixel layers compatible with a helix from the beam line, with the seed fit;
- `kalman`: each seed followed outward through the layers, helix propagation (`helix`), multiple
  scattering as process noise, chi-square gating and best-candidate branching;
- `ambiguity`: tracks sharing hits resolved greedily by quality.

Seeds are followed in rounds (`_rounds`): first the triplets a fourth hit confirms (another triplet continues
them), which are nearly all real, then the others; a seed whose hits an earlier round's tracks hold is
dropped, so that a particle is followed about once and the work stays near one seed per particle. Within a
round, candidates of different seeds that end on the same two hits merge (`kalman.Finder.prune`). Tracks with
less than twice ``pt_min`` need one hit more than ``min_hits``: near the threshold, noise hits line up on
curling helices (on a gun of 20 muons with noise, 3 fakes of 5 noise hits at 0.15 GeV).

At the end of each pass its tracks are completed near their seeds, on the free hits, with the pass's gate: the seed
triplet's state is carried back to its first hit, then the CKF goes towards the beam line (``inward``,
`kalman.Finder` with ``inward``) and outward up to the seed's last hit (``gaps``). A particle whose innermost hits
made no seed otherwise starts its track a layer or two late, and a seed that skips a layer (a triplet from the
barrel to the second disk) leaves that layer's hit out: on list 1001 (seed 1) the tracks of prompt particles missed
0.009 of the score's weight in free hits inward of their first hit and 0.006 in free hits between their hits
(0.003 and 0.001 with both), and `ckf` scores 0.857 without either, 0.867 inward, 0.872 with both; on list 1003
0.852, 0.861, 0.864 (`benchmarks/ckf_losses.py`).

Two more passes follow on the hits the earlier ones left free (issue 20): in realistic events (simulated from
the real TrackML lists) 29 % of the particles start more than 1 mm off the beam line, the material secondaries,
and no beam-line seed finds them (on list 1001 they held 0.14 of the 0.19 of the score the single pass lost).
The displaced pass seeds pixel triplets again with |d0| up to ``displaced_d0_max`` (from ``displaced_pt_min``,
|z0| up to ``displaced_z0_max``); the outer pass seeds triplets of consecutive strip barrel layers
(`seeding.strip_layer_pairs`) with |d0| up to ``outer_d0_max``, for the products of the pixel support tube and
the strip layers. Free seeds line up noise hits: the tracks of these passes need every hit within
``later_chi2_max``, stop at the second layer crossed without a hit (``later_max_holes``), and need
``displaced_min_hits`` (5 since session 19, 6 before) or ``outer_min_hits`` (6) hits when they fit well (a mean
chi2 per hit below ``short_chi2_max``) and crossed no layer without a hit, one hit more otherwise. With the first
pass's cuts they made 40 tracks of noise on a 20-muon gun with the real noise rates; with 6 hits whatever the fit,
tracks of noise again. On list 1001 (seed 1) the rule scores 0.872 with a fake rate of 0.031, 7 hits always 0.866
and 0.031 (`benchmarks/ckf_losses.py`). The pixel seeds' 5-hit tracks make no track of noise on that gun, the
strips' do (13 on it, `benchmarks/ckf_noise.py`: five strip hits from r = 360 to 1020 mm, two of them in the long
strips, line up on a helix by chance), hence the two counts. Every pass's tracks below twice ``pt_min`` in pT (0.3
GeV) need a hit more, except the outer pass's, whose threshold is ``outer_soft_pt`` (0.2 GeV since session 19): its
0.2-0.3 GeV tracks of 6 hits made no noise there and are the soft secondaries of the strip layers.
``later_outward`` (on by default since session 19): the later passes' tracks end where their hits turn back towards
the beam line (at the first hit more than 20 mm lower in r than an earlier one: a looper's second half), and are
kept only when the hits before it are enough (the hits they need, as above, counted before the cut); the tracks of
noise that outer seeds from 0.2 GeV (``outer_pt_min``, 0.3 GeV before session 19) make on that gun are such
loopers: with both, the gun's noise tracks are those of the 0.3 GeV seeds without the check
(`benchmarks/ckf_noise.py`), and on the real lists 1000-1009 `ckf` gains 0.003 and `gnn` 0.003 (session 19 first
dropped such tracks whole; cutting them instead keeps the same noise and finds a few more loopers).

Last, the pieces of one particle are joined (``join``, `join.join_tracks`): each track followed on outward from
its last three hits into the first hits of the others, and joined to the one whose first hits it takes. A
particle's candidate that stopped early (a hole too many, a hit outside the gate) leaves its outer hits to a
later seed, and the score counts one piece at most; `gnn`'s graph pieces, followed again (`follow`), split more
particles than `ckf`'s own seeds do.

``pt_min`` sets what is found and what it costs: 39 % of the TrackML weight is on particles below 0.5 GeV. On
simulated ttbar with mu = 200 (the first event of `benchmarks/tracking.py`, 139k hits, one core), pt_min =
0.5 GeV scores 0.60 in 7 s and 0.5 GB, 0.3 GeV 0.74 in 11 s and 0.7 GB, 0.2 GeV 0.82 in 19 s and 0.9 GB, the
default 0.15 GeV 0.846 in 41 s and 1.8 GB (over the benchmark's three events: 0.848, 39 s, 2.0 GB). The efficiency
above 1 GeV (0.92) is the same for all. What is lost at 0.15 GeV: particles made away from the beam line (r > 1
cm, 6 % of the weight, 15 % of them found), |eta| > 4 (9 %, 61 % found) and with at most 6 hits; and on found
particles, mostly their first pixel hits (the track starts a layer late: the inward extension above recovers half).

>>> from deepreco.reconstruct import get_method
>>> tracks = get_method("ckf", pt_min=0.5).reconstruct(event)          # doctest: +SKIP
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ...errors import DeepRecoError
from ...event import Event
from ...progress import stage
from ..base import Method, register
from .ambiguity import best_per_seed, resolve
from .geometry import layers, prepare_hits
from .join import join_tracks
from .kalman import Finder
from .seeding import find_triplets, fit_seeds, strip_layer_pairs, track_triplets

__all__ = ["CKFTracks"]


def _rounds(triplets: np.ndarray, quality: np.ndarray, n_hits: int, per_pair: int = 2) -> list[np.ndarray]:
    """Indices of the triplets (hit numbers (n, 3), r-z quality) followed in each round, in order.

    1. chain starts: triplets that another continues outward ((m, t) of one is (b, m) of another) and none
       continues inward; nearly all real, and one per particle;
    2. the other confirmed triplets;
    3. the unconfirmed ones, at most ``per_pair`` (the best r-z matches) per doublet (b, m) and per (m, t).
    """
    trip = triplets.astype(np.int64, copy=False)
    bm = trip[:, 0] * n_hits + trip[:, 1]
    mt = trip[:, 1] * n_hits + trip[:, 2]
    up, down = np.isin(mt, bm), np.isin(bm, mt)
    keep = np.ones(len(trip), bool)
    for key in (bm, mt):
        order = np.lexsort((quality, key))
        first = np.searchsorted(key[order], key[order], side="left")
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order)) - first
        keep &= rank < per_pair
    return [np.flatnonzero(up & ~down), np.flatnonzero(down), np.flatnonzero(~up & ~down & keep)]


COMING_BACK = 20.0  # mm: how far below an earlier hit's r a later hit of a `later_outward` track may lie


def _outgoing(hits, cand, tol: float) -> np.ndarray:
    """Per candidate: its hits, in the order they were taken, before the first that lies more than ``tol`` mm nearer
    the beam line (in r) than one taken before it (all of them when none does)."""
    r = hits.r[np.maximum(cand.hits, 0)]
    taken = np.arange(cand.hits.shape[1])[None, :] < cand.nh[:, None]
    highest = np.maximum.accumulate(np.where(taken, r, -np.inf), axis=1)
    back = taken & (r < highest - tol)
    return np.where(back.any(axis=1), back.argmax(axis=1), cand.nh)


@register("ckf")
class CKFTracks(Method):
    """Combinatorial Kalman filter track finding.

    Parameters: ``pt_min`` [GeV] the smallest transverse momentum seeded; ``z0_max`` [mm] and ``d0_max`` [mm]
    the longitudinal and transverse impact parameters a seed may have; ``seed_sigma`` the seed's r-z
    consistency cut in standard deviations of the scattering; ``chi2_max`` the gate on a hit's chi2 (2 degrees
    of freedom); ``n_branches`` hits a candidate branches on per layer; ``max_candidates`` candidates kept per
    seed; ``max_holes`` layers crossed without a hit before a candidate stops; ``min_hits`` hits a track needs;
    ``field`` [T] the solenoid field; ``error_scale`` multiplies the hits' pitch / sqrt(12) errors. The later
    passes (the module's docstring): ``displaced_d0_max``, ``displaced_pt_min``, ``displaced_z0_max`` [mm, GeV,
    mm] for the pixel seeds off the beam line, ``outer_d0_max``, ``outer_pt_min``, ``outer_z0_max`` for the strip
    seeds (a ``*_d0_max`` of 0 skips its pass), ``displaced_min_hits`` and ``outer_min_hits`` the fewest hits of
    each pass's tracks (a hit more below twice ``pt_min`` in pT, below ``outer_soft_pt`` in the outer pass),
    ``later_chi2_max``, ``later_max_holes`` and ``short_chi2_max`` for the tracks of both, ``later_outward`` cuts
    them where they turn back towards the beam line; ``inward`` and ``gaps``: complete each pass's tracks inward of
    their seeds and on the layers their seeds skip; ``join``: join the pieces of one particle (`join.join_tracks`),
    also after `follow` and `extend`.
    """

    trackml_modules = True
    # the parameters' ranges, checked when the method is made (`deepreco.registry.out_of_range`)
    ranges = {"pt_min": "> 0", "z0_max": "> 0", "d0_max": "> 0", "seed_sigma": "> 0", "chi2_max": "> 0",
              "n_branches": ">= 1", "max_candidates": ">= 1", "max_holes": ">= 0", "min_hits": ">= 1", "field": "> 0",
              "error_scale": "> 0", "displaced_d0_max": ">= 0", "displaced_pt_min": "> 0", "displaced_z0_max": "> 0",
              "displaced_min_hits": ">= 1", "outer_d0_max": ">= 0", "outer_pt_min": "> 0", "outer_z0_max": "> 0",
              "outer_min_hits": ">= 1", "outer_soft_pt": ">= 0", "later_chi2_max": "> 0", "later_max_holes": ">= 0",
              "short_chi2_max": ">= 0"}

    def __init__(self, pt_min: float = 0.15, z0_max: float = 200.0, d0_max: float = 1.0, seed_sigma: float = 4.0,
                 chi2_max: float = 15.0, n_branches: int = 3, max_candidates: int = 3, max_holes: int = 2,
                 min_hits: int = 5, field: float = 2.0, error_scale: float = 1.0, displaced_d0_max: float = 50.0,
                 displaced_pt_min: float = 0.15, displaced_z0_max: float = 300.0, displaced_min_hits: int = 5,
                 outer_d0_max: float = 300.0, outer_pt_min: float = 0.2, outer_z0_max: float = 1500.0,
                 outer_min_hits: int = 6, outer_soft_pt: float = 0.2,
                 later_chi2_max: float = 8.0, later_max_holes: int = 1, short_chi2_max: float = 2.0,
                 inward: bool = True, gaps: bool = True, later_outward: bool = True, join: bool = True):
        self.pt_min = pt_min
        self.z0_max = z0_max
        self.d0_max = d0_max
        self.seed_sigma = seed_sigma
        self.chi2_max = chi2_max
        self.n_branches = n_branches
        self.max_candidates = max_candidates
        self.max_holes = max_holes
        self.min_hits = min_hits
        self.field = field
        self.error_scale = error_scale
        self.displaced_d0_max = displaced_d0_max
        self.displaced_pt_min = displaced_pt_min
        self.displaced_z0_max = displaced_z0_max
        self.displaced_min_hits = displaced_min_hits
        self.outer_min_hits = outer_min_hits
        self.outer_soft_pt = outer_soft_pt
        self.outer_d0_max = outer_d0_max
        self.outer_pt_min = outer_pt_min
        self.outer_z0_max = outer_z0_max
        self.short_chi2_max = short_chi2_max
        self.later_chi2_max = later_chi2_max
        self.later_max_holes = later_max_holes
        self.inward = inward
        self.gaps = gaps
        self.later_outward = later_outward
        self.join = join

    def find(self, event: Event) -> dict:
        """Seeds, candidates and tracks of an event, for inspection: a dict of the stages' outputs.

        ``hits`` (the prepared `Hits`), ``seeds`` (as `find_seeds` gives them, the seeds followed, round after
        round), ``track_of_hit`` (track number per hit row, -1 for none; with ``join``, the pieces of a particle
        joined take the number of the first), ``n_tracks`` (the tracks after joining), ``tracks`` (the accepted
        candidates of each round, with their final states and covariances, in track-number order, before joining)
        and ``seconds`` (wall time of the seeding, then of each round that ran).
        """
        clock = [time.perf_counter()]
        lay = layers()
        hits = prepare_hits(event.hits, self.error_scale)
        with stage("seeding"):
            triplets, quality = find_triplets(hits, lay, pt_min=self.pt_min, z0_max=self.z0_max, d0_max=self.d0_max,
                                              n_sigma=self.seed_sigma, field=self.field)
            rounds = [(triplets[r], quality[r]) for r in _rounds(triplets, quality, len(hits))]
            del triplets, quality  # a quarter of them are in no round
        finder = Finder(hits, lay, field=self.field, chi2_max=self.chi2_max, n_branches=self.n_branches,
                        max_candidates=self.max_candidates, max_holes=self.max_holes)
        n = len(hits)
        used = np.zeros(n, bool)
        clock.append(time.perf_counter())
        track_of_hit = np.full(n, -1, np.int64)
        with stage("following", total=len(rounds)) as advance:
            seeds, states, n_tracks = self._follow(hits, rounds, finder, used, track_of_hit, clock, advance)
        more, extra, n_tracks = self._later_passes(hits, lay, used, track_of_hit, clock, n_tracks)
        seeds = {k: np.concatenate([seeds[k], *[m[k] for m in more]]) for k in seeds}
        states += extra
        if self.join:
            track_of_hit = self._join(hits, lay, track_of_hit)
            n_tracks = len(np.unique(track_of_hit[track_of_hit >= 0]))
        return {"hits": hits, "seeds": seeds, "track_of_hit": track_of_hit, "n_tracks": n_tracks, "tracks": states,
                "seconds": np.diff(clock)}

    def _later_passes(self, hits, lay, used, track_of_hit, clock, n_tracks):
        """The displaced and outer passes on the hits ``used`` leaves free (filling ``used`` and
        ``track_of_hit``); returns the seeds of each pass, their tracks and the number of tracks."""
        passes = [("displaced", self.displaced_d0_max, self.displaced_pt_min, self.displaced_z0_max, None,
                   self.displaced_min_hits, 2.0 * self.pt_min),
                  ("outer", self.outer_d0_max, self.outer_pt_min, self.outer_z0_max, strip_layer_pairs(lay),
                   self.outer_min_hits, self.outer_soft_pt)]
        seeds, states = [], []
        for name, d0_max, pt_min, z0_max, layer_pairs, min_hits, soft_pt in passes:
            if d0_max <= 0:
                continue
            # a later pass: seeds far from the beam line (then on the strips), on the hits the earlier left free
            free = hits.without(used)
            with stage(f"{name} seeding"):
                triplets, quality = find_triplets(free, lay, pt_min=pt_min, z0_max=z0_max, d0_max=d0_max,
                                                  n_sigma=self.seed_sigma, field=self.field, layer_pairs=layer_pairs)
                rounds = [(triplets[r], quality[r]) for r in _rounds(triplets, quality, len(hits))]
                del triplets, quality
            finder = Finder(free, lay, field=self.field, chi2_max=self.later_chi2_max, n_branches=self.n_branches,
                            max_candidates=self.max_candidates, max_holes=int(self.later_max_holes))
            clock.append(time.perf_counter())
            with stage(f"{name} following", total=len(rounds)) as advance:
                more, extra, n_tracks = self._follow(hits, rounds, finder, used, track_of_hit, clock, advance,
                                                     n_tracks, min_hits, soft_pt)
            seeds.append(more)
            states += extra
        return seeds, states, n_tracks

    def extend(self, event: Event, labels: np.ndarray) -> np.ndarray:
        """Another method's track label per hit row (-1: no track) with the tracks of the displaced and outer
        passes added on the hits it left free (new labels after its largest): what those passes find that the
        method missed, e.g. `gnn`'s graph, which holds few edges of particles made far from the beam line."""
        labels = np.asarray(labels, np.int64)
        if labels.shape != (event.n_hits,):
            raise DeepRecoError(f"ckf extend: need one label per hit ({event.n_hits}), got shape {labels.shape}")
        hits = prepare_hits(event.hits, self.error_scale)
        track_of_hit = labels.copy()
        used = track_of_hit >= 0
        lay = layers()
        self._later_passes(hits, lay, used, track_of_hit, [time.perf_counter()], int(track_of_hit.max(initial=-1)) + 1)
        return self._join(hits, lay, track_of_hit) if self.join else track_of_hit

    def _join(self, hits, lay, track_of_hit: np.ndarray) -> np.ndarray:
        """`join.join_tracks` with the first pass's gate, branching and holes."""
        with stage("joining"):
            return join_tracks(hits, lay, track_of_hit, field=self.field, chi2_max=self.chi2_max,
                               n_branches=self.n_branches, max_candidates=self.max_candidates,
                               max_holes=self.max_holes)

    def follow(self, event: Event, labels: np.ndarray, keep: int = 3, later: bool = False,
               rounds: int = 2) -> np.ndarray:
        """Another method's tracks (a label per hit row, -1: none) followed again by this Kalman filter: each
        track's three innermost hits on distinct layers (by distance from the origin) are a seed, followed and
        completed as the first pass's seeds are (the same gate, branching, ambiguity resolution, ``min_hits``,
        inward and gap completion; the collinear triplets, which fit no circle, are not seeds). Each further round
        (``rounds``) seeds the tracks not made yet again, on the hits left free, without their innermost hit (a
        wrong first hit, or one another track took, spoils a seed). Then each track the filter did not make keeps
        its hits the filter's tracks left free, when there are at least ``keep``. ``later``: the displaced and
        outer passes first, on the hits the filter's tracks left free (before the given tracks take theirs back:
        on list 1001 0.898 against 0.883 the other way round). Returns a new label per hit row. What it mends
        (`benchmarks/gnn_kalman.py`): `gnn` splits particles into pieces and gives pieces hits of other
        particles, which a seed followed along its helix does not."""
        labels = np.asarray(labels, np.int64)
        if labels.shape != (event.n_hits,):
            raise DeepRecoError(f"ckf follow: need one label per hit ({event.n_hits}), got shape {labels.shape}")
        clock = [time.perf_counter()]
        hits = prepare_hits(event.hits, self.error_scale)
        lay = layers()
        n = len(hits)
        reach = np.hypot(hits.r, hits.z)
        used = np.zeros(n, bool)
        track_of_hit = np.full(n, -1, np.int64)
        n_tracks = 0
        seeding = labels
        with stage("kalman following", total=rounds) as advance:
            for k in range(rounds):
                if k:
                    advance()
                    seeding = np.where(used, -1, seeding)
                    rows = np.flatnonzero(seeding >= 0)
                    rows = rows[np.lexsort((reach[rows], seeding[rows]))]
                    seeding[rows[np.r_[True, seeding[rows][1:] != seeding[rows][:-1]]] if len(rows) else rows] = -1
                triplets = track_triplets(seeding, reach, hits.layer)
                with np.errstate(divide="ignore", invalid="ignore"):
                    fits = fit_seeds(hits, triplets, np.zeros(len(triplets)), self.field)
                finite = [np.isfinite(fits[key]) for key in ("phi0", "d0", "z0", "cot", "qpt", "psi")]
                triplets = triplets[np.all(finite, axis=0)]
                if len(triplets) == 0:
                    break
                finder = Finder(hits.without(used) if k else hits, lay, field=self.field, chi2_max=self.chi2_max,
                                n_branches=self.n_branches, max_candidates=self.max_candidates,
                                max_holes=self.max_holes)
                _, _, n_tracks = self._follow(hits, [(triplets, np.zeros(len(triplets)))], finder, used, track_of_hit,
                                              clock, lambda: None, n_tracks)
        if later:  # before the given tracks take their free hits back: those hold most displaced particles' hits
            n_tracks = self._later_passes(hits, lay, used, track_of_hit, clock, n_tracks)[2]
        left = np.where(used, -1, labels)
        count = np.bincount(left[left >= 0], minlength=max(int(labels.max(initial=-1)) + 1, 1))
        kept = (left >= 0) & (count[np.maximum(left, 0)] >= keep)
        track_of_hit[kept] = n_tracks + np.unique(left[kept], return_inverse=True)[1]
        return self._join(hits, lay, track_of_hit) if self.join else track_of_hit

    def _follow(self, hits, rounds, finder, used, track_of_hit, clock, advance, n_tracks=0, min_hits=None,
                soft_pt=None):
        """Follow the triplets of each round (hit numbers, quality) in turn; fills ``used`` and ``track_of_hit``,
        appends to ``clock``; returns the seeds followed, the tracks and the number of tracks (``n_tracks`` of
        earlier passes included). ``min_hits``: the hits a track needs (None: ``self.min_hits``); ``soft_pt`` [GeV]:
        tracks below it need a hit more (None: twice ``pt_min``)."""
        n = len(used)
        later = min_hits is not None
        min_hits = self.min_hits if min_hits is None else min_hits
        soft_pt = 2.0 * self.pt_min if soft_pt is None else soft_pt
        followed, states, extend = [], [], []
        first_id = n_tracks
        for k in range(len(rounds)):
            if k:
                advance()
            triplets, quality = rounds.pop(0)  # dropped once followed
            # a seed whose hits a track already holds would only find that track again
            free = ~used[triplets].any(axis=1)
            if not free.any():
                continue
            # fitted only now: most triplets of the later rounds never are
            seeds = fit_seeds(hits, triplets[free], quality[free], self.field)
            del triplets, quality
            followed.append(seeds)
            cand = finder.run(seeds)
            best = best_per_seed(cand.seed, cand.nh, cand.chi2)
            cand = cand.take(best)
            # below twice the seeding threshold noise hits line up on curling helices: those tracks need a hit more
            # (the outer pass's own threshold, ``outer_soft_pt``, is lower: its soft tracks made no more noise)
            need = min_hits + (np.abs(cand.state[:, 4]) * soft_pt > 1.0)
            if later:  # the later passes' shortest tracks must fit well and have no hole, or have a hit more
                need = need + ((cand.chi2 > self.short_chi2_max * cand.nh) | (cand.holes > 0))
                if self.later_outward:  # and they end where they turn back towards the beam line
                    cand.nh = _outgoing(hits, cand, COMING_BACK)
            ti, hi = resolve(cand.hits, cand.nh, cand.chi2, n, min_hits=need, used=used)
            kept, new_id = np.unique(ti, return_inverse=True)
            track_of_hit[hi] = new_id + n_tracks
            extend.append({k: v[cand.seed[kept]] for k, v in seeds.items()})
            states.append(cand.take(kept))
            n_tracks += len(kept)
            clock.append(time.perf_counter())
        if (self.inward or self.gaps) and extend:
            self._complete(hits, {k: np.concatenate([e[k] for e in extend]) for k in extend[0]}, first_id, used,
                           track_of_hit, finder)
        seeds = {k: np.concatenate([f[k] for f in followed]) for k in followed[0]} if followed else \
            fit_seeds(hits, np.zeros((0, 3), np.int64), np.zeros(0), self.field)
        return seeds, states, n_tracks

    def _complete(self, hits, seeds, first_id, used, track_of_hit, outward: Finder) -> None:
        """Tracks ``first_id``, ``first_id + 1``, ... completed near their ``seeds`` (the fitted triplets, as
        `fit_seeds` gives them), on the free hits, with the gate and holes of the pass's ``outward`` finder: each
        triplet's state carried back to its first hit, then the CKF towards the beam line (``inward``: a particle
        whose innermost hits made no seed starts its track a layer or two late) and outward up to the seed's last
        hit (``gaps``: the layers a seed skips, which the seed's start never searches). Each hit found goes to the
        first track that found it; fills ``used`` and ``track_of_hit``."""
        triplets = seeds["hits"]
        if len(triplets) == 0:
            return
        reach = np.hypot(hits.r, hits.z)
        for inward in [True] * self.inward + [False] * self.gaps:
            finder = Finder(hits.without(used), outward.lay, field=self.field, chi2_max=outward.chi2_max,
                            n_branches=self.n_branches, max_candidates=self.max_candidates,
                            max_holes=outward.max_holes, inward=inward, from_first=True)
            cand = finder.run(seeds)
            cand = cand.take(best_per_seed(cand.seed, cand.nh, cand.chi2))
            slot = np.arange(cand.hits.shape[1])[None, :] < cand.nh[:, None]
            owner = np.broadcast_to(cand.seed[:, None], cand.hits.shape)[slot]
            new = cand.hits[slot].astype(np.int64)
            free = ~used[new]
            if not inward:  # outward: the layers between the seed's hits only
                free &= reach[new] < reach[triplets[owner, 2]]
            new, owner = new[free], owner[free]
            new, first = np.unique(new, return_index=True)  # a hit two tracks found: the first track's
            track_of_hit[new] = first_id + owner[first]
            used[new] = True

    def _reconstruct(self, event: Event) -> pd.DataFrame:
        found = self.find(event)
        rows = np.flatnonzero(found["track_of_hit"] >= 0)
        return pd.DataFrame({"hit_id": found["hits"].hit_id[rows], "track_id": found["track_of_hit"][rows]})

"""Scoring seeds as seed 000 defines it, DeepCore against the classical jet-core seeding, on the same events.

Simulated tracks: charged particles with pT > 1 GeV, |eta| < 2.5, produced within r < 3 cm and |z| < 30 cm,
whose direction is within DeltaR < 0.1 of a jet axis and which cross layer 2 (where the seeds sit). A seed and a
simulated track are associated when

    chi2 = (d_rphi / 44 um)^2 + (dz / 44 um)^2 + (d_eta / 0.002)^2 + (d_phi / 0.002)^2 + (d(1/pT) / 0.15)^2 < 25

at the track's layer-2 crossing (a track crossing two overlapping ladders is compared with both), the seed's
fixed uncertainties (:data:`.seeds.SIGMA`). Each seed goes with the track of lowest chi2, among all charged
particles that cross layer 2 (any pT: a seed of a real 0.8 GeV track is not a fake).

- efficiency = simulated tracks with an associated seed / simulated tracks;
- fake rate = seeds associated with no particle / seeds;
- duplicate rate = seeds whose particle has another associated seed / seeds.

Seconds per event, one thread, both methods from the same input (the event's fired pixels and clusters, whose
simulation is not counted) to the same output (a table of cleaned seeds at layer 2, the stage where CMS hands
seeds to track building): for DeepCore the directions and windows, the batched network, seed extraction and
cleaning (each stage also reported apart, under ``stages``); for the baseline the cluster selection, the K-means
splitting when asked, and the pairs. Neither method builds tracks here: CMS's "seeding time down by 85 %" is
for the whole jet-core iteration, track building included, which this pixel-only barrel does not have.

DeepCore is also scored before cleaning (``before_cleaning``) and, with ``variants``, with other cleaning cuts
applied to the same network output (each variant's time = the shared stages + its own cleaning).

Tracks (``tracks=True``, issue 26): each method's seeds (``deepcore``, ``baseline``, ``baseline_kmeans``, the
cleaning variants, and DeepCore's seeds before cleaning) go through the same track building
(`tracking.build_tracks`, default limits) on the event's strip hits, and the tracks are scored with the seed's
track-level definitions. Simulated tracks: pT > 0.9 GeV, |eta| < 2.5, r_prod < 3 cm, |z_prod| < 30 cm, within
DeltaR < 0.1 of a jet axis, crossing layer 2. A track is associated with the simulated particle of lowest

    chi2 = d^T C^-1 d < 25,   d = the 5 helix parameters (azimuth of the point, z, azimuth of the direction,
                                  cot(theta), q / pT) on the cylinder r = 68 mm (layer 2's mean radius)

with C the covariance of the track's final fit carried to that cylinder (`tracking.REF_COLUMNS`), the particle's
parameters its own helix from its layer-2 crossing to the same cylinder; candidates are all charged particles
crossing layer 2 (any pT).

- track efficiency = simulated tracks with an associated track / simulated tracks;
- track fake rate = tracks associated with no particle / tracks;
- track duplicate rate = tracks beyond the first associated with one particle / tracks.

Seconds per event for the iteration = seeding (as above) + building; the strip hits' simulation is not counted.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..progress import stage
from ..reconstruct.ckf.helix import propagate, wrap
from .detector import PixelBarrel
from .events import JetEvent, make_event
from .seeders import SEEDERS
from .seeds import CLEAN_ANGLE, CLEAN_XY, SIGMA, TRACK_THRESHOLD_SCALE, above, check_scale, clean_seeds, extract_seeds
from .strips import strip_hits
from .tracking import REF_COLUMNS, build_tracks, cov_columns
from .train import load_model
from .windows import build_windows

__all__ = ["HEADER", "TRACK_HEADER", "format_row", "format_track_row", "associate", "associate_tracks",
           "deepcore_seeds", "evaluate", "pair_differences", "rates", "raw_deepcore_seeds", "sim_states",
           "sim_tracks", "track_rates"]

CHI2_MAX = 25.0
TRACK_PT_MIN = 0.9
STRIP_STREAM = 26  # the strip hits of event s are drawn from the generator seeded with (s, 26)
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "deepcore.pt"


def sim_tracks(event: JetEvent, cone: float = 0.1, pt_min: float = 1.0) -> pd.DataFrame:
    """Layer-2 crossings of all charged particles, with ``selected`` (the efficiency's tracks), jet and dR."""
    cr = event.crossings[event.crossings["layer"] == 1].copy()
    part = event.particles.iloc[cr["row"].to_numpy()]
    px, py = part["px"].to_numpy(), part["py"].to_numpy()
    phi0 = np.arctan2(py, px)
    eta = cr["eta"].to_numpy()
    r_prod = np.hypot(part["vx"].to_numpy(), part["vy"].to_numpy())
    jets = event.jets
    if len(jets):
        dr = np.hypot(eta[:, None] - jets["eta"].to_numpy()[None],
                      np.mod(phi0[:, None] - jets["phi"].to_numpy()[None] + np.pi, 2 * np.pi) - np.pi)
        jet = np.argmin(dr, axis=1)
        dr = dr[np.arange(len(cr)), jet]
    else:
        jet, dr = np.full(len(cr), -1), np.full(len(cr), np.inf)
    cr["jet"], cr["dr"] = jet, dr
    cr["jet_pt"] = jets["pt"].to_numpy()[jet] if len(jets) else np.nan
    cr["selected"] = ((cr["pt"].to_numpy() > pt_min) & (np.abs(eta) < 2.5) & (r_prod < 30)
                      & (np.abs(part["vz"].to_numpy()) < 300) & (dr < cone))
    return cr.reset_index(drop=True)


def associate(seeds: pd.DataFrame, tracks: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, the particle_id of its lowest-chi2 track (-1 when chi2 >= 25 for all) and that chi2."""
    if len(seeds) == 0 or len(tracks) == 0:
        return np.full(len(seeds), -1, np.int64), np.full(len(seeds), np.inf)
    s = {c: seeds[c].to_numpy(np.float64)[:, None] for c in ("x", "y", "z", "phi", "eta", "inv_pt")}
    t = {c: tracks[c].to_numpy(np.float64)[None] for c in ("x", "y", "z", "phi", "eta")}
    t["inv_pt"] = 1.0 / tracks["pt"].to_numpy(np.float64)[None]
    chi2 = ((np.hypot(s["x"] - t["x"], s["y"] - t["y"]) / SIGMA["xy"]) ** 2 + ((s["z"] - t["z"]) / SIGMA["z"]) ** 2
            + ((s["eta"] - t["eta"]) / SIGMA["eta"]) ** 2
            + ((np.mod(s["phi"] - t["phi"] + np.pi, 2 * np.pi) - np.pi) / SIGMA["phi"]) ** 2
            + ((s["inv_pt"] - t["inv_pt"]) / SIGMA["inv_pt"]) ** 2)
    best = np.argmin(chi2, axis=1)
    best_chi2 = chi2[np.arange(len(seeds)), best]
    pid = np.where(best_chi2 < CHI2_MAX, tracks["particle_id"].to_numpy()[best], -1)
    return pid, best_chi2


def rates(seed_pid: np.ndarray, tracks: pd.DataFrame) -> dict:
    """Efficiency, fake and duplicate rates from the seeds' associated particles (one event or many)."""
    selected = tracks[tracks["selected"]]
    wanted = np.unique(selected["particle_id"].to_numpy())
    found = np.isin(wanted, seed_pid[seed_pid >= 0])
    assoc = seed_pid[seed_pid >= 0]
    ids, counts = np.unique(assoc, return_counts=True)
    n_dup = int(counts[counts > 1].sum())
    n = len(seed_pid)
    # None where a rate has no denominator (no tracks, no seeds): JSON has no NaN
    return {"efficiency": float(found.mean()) if len(wanted) else None,
            "fake_rate": float((seed_pid < 0).mean()) if n else None,
            "duplicate_rate": n_dup / n if n else None, "tracks": int(len(wanted)), "seeds": int(n)}


def sim_states(sims: pd.DataFrame, radius: float, field: float) -> np.ndarray:
    """(n, 5) helix parameters (as `tracking.REF_COLUMNS`) of each simulated layer-2 crossing (``sim_tracks`` rows:
    x, y, z, phi of the direction, eta, pt, q) carried along its helix to the cylinder r = ``radius`` [mm], in
    ``field`` [T]; NaN where it does not reach it."""
    x, y, z = (sims[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    state = np.column_stack([np.arctan2(y, x), z, sims["phi"].to_numpy(np.float64),
                             np.sinh(sims["eta"].to_numpy(np.float64)),
                             sims["q"].to_numpy(np.float64) / sims["pt"].to_numpy(np.float64)])
    every = np.ones(len(sims), bool)
    out, ok, _ = propagate(state, every, np.hypot(x, y), every, np.full(len(sims), float(radius)), field)
    out[~ok] = np.nan
    return out


def associate_tracks(tracks: pd.DataFrame, states: np.ndarray, particle_id: np.ndarray) -> tuple[np.ndarray,
                                                                                               np.ndarray]:
    """Per track (`tracking.build_tracks` table), the ``particle_id`` of the simulated state (``states``, from
    `sim_states`) of lowest chi2 with the track's fitted covariance, -1 when none is below 25; and that chi2."""
    n = len(tracks)
    if n == 0 or len(states) == 0:
        return np.full(n, -1, np.int64), np.full(n, np.inf)
    ref = tracks[list(REF_COLUMNS)].to_numpy(np.float64)
    cov = np.zeros((n, 5, 5))
    iu, ju = np.triu_indices(5)
    cov[:, iu, ju] = cov[:, ju, iu] = tracks[cov_columns()].to_numpy(np.float64)
    good = np.isfinite(ref).all(1) & np.isfinite(cov).all((1, 2))
    good[good] &= np.linalg.det(cov[good]) > 0
    weight = np.zeros_like(cov)
    weight[good] = np.linalg.inv(cov[good])
    d = states[None] - ref[:, None]
    d[..., 0], d[..., 2] = wrap(d[..., 0]), wrap(d[..., 2])
    with np.errstate(invalid="ignore"):
        chi2 = np.einsum("nmi,nij,nmj->nm", d, weight, d)
    chi2 = np.where(np.isfinite(chi2) & good[:, None], chi2, np.inf)
    best = np.argmin(chi2, axis=1)
    best_chi2 = chi2[np.arange(n), best]
    pid = np.where(best_chi2 < CHI2_MAX, np.asarray(particle_id)[best], -1)
    return pid.astype(np.int64), best_chi2


def track_rates(track_pid: np.ndarray, sims: pd.DataFrame) -> dict:
    """Track efficiency, fake and duplicate rates (module docstring) from each track's associated particle (-1:
    none) and the simulated tracks (``particle_id``, ``selected``); one event or many (ids unique over them)."""
    track_pid = np.asarray(track_pid)
    wanted = np.unique(sims.loc[sims["selected"], "particle_id"].to_numpy())
    assoc = track_pid[track_pid >= 0]
    n = len(track_pid)
    return {"track_efficiency": float(np.isin(wanted, assoc).mean()) if len(wanted) else None,
            "track_fake_rate": float((track_pid < 0).mean()) if n else None,
            "track_duplicate_rate": (len(assoc) - len(np.unique(assoc))) / n if n else None,
            "reco_tracks": int(n), "sim_tracks": int(len(wanted))}


def raw_deepcore_seeds(event: JetEvent, model, det: PixelBarrel | None = None,
                       timings: dict | None = None, scale: float = 1.0) -> tuple[pd.DataFrame, object]:
    """DeepCore's seeds of an event before cleaning: every direction of every jet through the network in one
    batch, at ``scale`` times the seed's thresholds (`.seeds.extract_seeds`). With ``timings``, adds the seconds
    of each stage to it (keys windows, network, extract)."""
    det = det or PixelBarrel()
    t0 = time.perf_counter()
    windows = build_windows(event, det, truth=False)
    t1 = time.perf_counter()
    if len(windows.inputs) == 0:
        prob, params = np.zeros((0, 3, 30, 30), np.float32), np.zeros((0, 3, 5, 30, 30), np.float32)
    else:
        prob, params = (t.numpy() for t in model.predict(torch.from_numpy(windows.inputs),
                                                         torch.from_numpy(windows.jet)))
    t2 = time.perf_counter()
    seeds = extract_seeds(prob, params, windows.meta, det, scale=scale)
    t3 = time.perf_counter()
    if timings is not None:
        for key, dt in (("windows", t1 - t0), ("network", t2 - t1), ("extract", t3 - t2)):
            timings[key] = timings.get(key, 0.0) + dt
    return seeds, windows


def deepcore_seeds(event: JetEvent, model, det: PixelBarrel | None = None, clean_xy: float = CLEAN_XY,
                   clean_angle: float = CLEAN_ANGLE, scale: float = 1.0) -> tuple[pd.DataFrame, object]:
    """DeepCore's cleaned seeds of an event (cleaning across all its windows, :func:`.seeds.clean_seeds`), at
    ``scale`` times the seed's thresholds (`.seeds.TRACK_THRESHOLD_SCALE` for seeds that go to track building)."""
    seeds, windows = raw_deepcore_seeds(event, model, det, scale=scale)
    return clean_seeds(seeds, clean_xy, clean_angle), windows


def pair_differences(seeds: pd.DataFrame, max_distance: float = 0.3) -> pd.DataFrame:
    """Every two associated seeds of an event within ``max_distance`` [mm] in r-phi and z: their differences
    (dxy in r-phi, dz [mm], deta, dphi), ``same_particle`` (both associated with one particle: a duplicate) and
    ``same_window`` (both from one direction's window; needs the column ``sample``)."""
    cols = ("event", "particle_id", "x", "y", "z", "eta", "phi")
    missing = [c for c in cols if c not in seeds.columns]
    if missing:
        raise ValueError(f"pair differences: the seeds have no column {', '.join(missing)}")
    parts = []
    for _, g in seeds[seeds["particle_id"] >= 0].groupby("event", sort=False):
        i, j = np.triu_indices(len(g), 1)
        x, y, z = (g[c].to_numpy(np.float64) for c in ("x", "y", "z"))
        dxy, dz = np.hypot(x[i] - x[j], y[i] - y[j]), np.abs(z[i] - z[j])
        near = (dxy < max_distance) & (dz < max_distance)
        i, j = i[near], j[near]
        pid = g["particle_id"].to_numpy()
        window = g["sample"].to_numpy() if "sample" in g else np.full(len(g), -1)
        eta, phi = g["eta"].to_numpy(np.float64), g["phi"].to_numpy(np.float64)
        parts.append(pd.DataFrame({"dxy": dxy[near], "dz": dz[near], "deta": np.abs(eta[i] - eta[j]),
                                   "dphi": np.abs(np.mod(phi[i] - phi[j] + np.pi, 2 * np.pi) - np.pi),
                                   "same_particle": pid[i] == pid[j],
                                   "same_window": (window[i] == window[j]) & (window[i] >= 0)}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in ("dxy", "dz", "deta", "dphi")}).assign(
            same_particle=pd.Series(dtype=bool), same_window=pd.Series(dtype=bool))
    return pd.concat(parts, ignore_index=True)


def _check_cuts(name: str, cuts) -> tuple[float, float]:
    """(dxy, dangle) of a cleaning, both positive numbers, or a ValueError naming it."""
    try:
        dxy, dangle = (float(c) for c in cuts)
    except (TypeError, ValueError):
        raise ValueError(f"cleaning {name!r}: expected two numbers (dxy [mm], dangle), got {cuts!r}") from None
    if not (np.isfinite(dxy) and np.isfinite(dangle) and dxy > 0 and dangle > 0):
        raise ValueError(f"cleaning {name!r}: dxy and dangle must be positive, got {dxy!r}, {dangle!r}")
    return dxy, dangle


def _model(path: Path):
    """The network of ``path``, loaded once per process (a Dask worker loads it once, not once per event)."""
    from ..distributed import per_process

    return per_process(f"deepcore:{path}", lambda: load_model(path))


def _evaluate_event(model_path: Path, det: PixelBarrel | None, cleanings: dict, event_options: dict,
                    event_seed: int, remote=None, with_tracks: bool = False,
                    track_scale: float = TRACK_THRESHOLD_SCALE) -> dict:
    """Every method on the event of ``event_seed``: its tracks, each method's associated seeds and seconds
    (``remote``: the served network instead of the file's); ``with_tracks``: also each method's built tracks,
    associated, with the building seconds."""
    det = det or _detector()
    model = remote or _model(model_path)[0]
    baselines = {"baseline": SEEDERS.get("jetcore", detector=det),
                 "baseline_kmeans": SEEDERS.get("jetcore", split=True, detector=det)}
    with stage("simulating"):
        ev = make_event(event_seed, **event_options)
    tracks = sim_tracks(ev)
    tracks["event"] = ev.event_id
    stages, times = {}, {}
    found = {}
    low = min(1.0, track_scale) if with_tracks else 1.0
    with stage("deepcore"):
        raw_low, _ = raw_deepcore_seeds(ev, model, det, stages, scale=low)
    raw = above(raw_low, 1.0)
    found["deepcore_raw"] = raw
    for name, (dxy, dangle) in cleanings.items():
        t0 = time.perf_counter()
        found[name] = clean_seeds(raw, dxy, dangle)
        times[name] = time.perf_counter() - t0
    for name, method in baselines.items():
        t0 = time.perf_counter()
        with stage(name):
            found[name] = method.reconstruct(ev)
        times[name] = time.perf_counter() - t0
    seeds = {}
    for name, s in found.items():
        pid, chi2 = associate(s, tracks)
        seeds[name] = s.assign(particle_id=pid, chi2=chi2)
    out = {"jets": len(ev.jets), "tracks": tracks, "seeds": seeds, "stages": stages, "times": times}
    if with_tracks:
        # DeepCore's lists for building: the same network output at the track scale, cleaned the same way
        to_build, track_times = dict(found), {}
        loose = above(raw_low, track_scale)
        to_build["deepcore_raw"] = loose
        for name, (dxy, dangle) in cleanings.items():
            t0 = time.perf_counter()
            to_build[name] = clean_seeds(loose, dxy, dangle)
            track_times[name] = time.perf_counter() - t0
        out.update(_build_event(ev, det, to_build, event_seed), track_times=track_times,
                   track_seeds={n: len(to_build[n]) for n in ("deepcore_raw", *cleanings)})
    return out


def _build_event(ev: JetEvent, det: PixelBarrel, found: dict, event_seed: int) -> dict:
    """Each method's seeds through track building on the event's strip hits; its tracks associated with the
    simulated particles (module docstring), and the building seconds."""
    with stage("simulating strips"):
        strips = strip_hits(ev.particles, np.random.default_rng((event_seed, STRIP_STREAM)))
    sims = sim_tracks(ev, pt_min=TRACK_PT_MIN)
    sims["event"] = ev.event_id
    states = sim_states(sims, det.radii[1], det.field_t)
    built, building = {}, {}
    for name in found:  # every list: DeepCore before cleaning, its cleanings, the baselines
        t0 = time.perf_counter()
        with stage(f"building {name}"):
            trk, _ = build_tracks(ev, strips, found[name], pixel=det)
        building[name] = time.perf_counter() - t0
        pid, chi2 = associate_tracks(trk, states, sims["particle_id"].to_numpy())
        built[name] = trk.assign(event=ev.event_id, sim_particle=pid, sim_chi2=chi2)
    return {"sims": sims, "built": built, "building": building}


def _detector() -> PixelBarrel:
    from ..distributed import per_process

    return per_process("deepcore:detector", PixelBarrel)


def evaluate(n_events: int = 20, seed: int = 0, model_path: Path | None = None, det: PixelBarrel | None = None,
             keep: bool = False, clean_xy: float = CLEAN_XY, clean_angle: float = CLEAN_ANGLE,
             variants: dict[str, tuple[float, float]] | None = None, workers: int = 1,
             scheduler: str | None = None, progress: bool = False, server: str | None = None,
             fallback: str | None = None, tracks: bool = False,
             track_threshold_scale: float = TRACK_THRESHOLD_SCALE, **event_options) -> dict:
    """DeepCore and the baseline(s) on the same ``n_events`` events (seeds seed .. seed + n - 1), event by
    event on ``workers`` local processes or the Dask cluster at ``scheduler`` (`deepreco.distributed`; the same
    figures every way but the times).

    DeepCore's seeds are cleaned with ``clean_xy`` [mm] and ``clean_angle`` (the seed's 0.050 and 0.002 by
    default); ``variants`` maps more row names (e.g. ``deepcore_ang0.015``) to other (dxy, dangle) cuts,
    applied to the same network output. Returns the JSON-ready summary (keys ``deepcore``, ``baseline``,
    ``baseline_kmeans``, the variants, ``events``, ``jets``, ...); with ``keep``, also ``records``: per-track and
    per-seed tables for the plots (not JSON). ``server``: the network runs on that server
    (`deepreco.export.client`), ``fallback`` ``local``: in-process when it does not answer. ``tracks``: also
    build tracks from each method's seeds and add, per method, ``track_efficiency``, ``track_fake_rate``,
    ``track_duplicate_rate``, ``reco_tracks`` and the seconds per event of ``seeding``, ``building`` and the whole
    ``iteration`` (``track_level``: the simulated tracks and the definitions; with ``keep``, records ``sims``).
    DeepCore's seeds for building are taken at ``track_threshold_scale`` times the seed's thresholds (the
    seed-level figures at the seed's own), from the same network output (`.seeds.TRACK_THRESHOLD_SCALE`).
    """
    from functools import partial

    from ..distributed import EventRunner
    from ..export.client import connect

    if isinstance(n_events, bool) or not isinstance(n_events, int | np.integer) or n_events < 1:
        raise ValueError(f"evaluate: n_events must be a positive integer, got {n_events!r}")
    if not isinstance(tracks, bool):
        raise ValueError(f"evaluate: tracks must be True or False, got {tracks!r}")
    check_scale(track_threshold_scale)
    cleanings = {"deepcore": _check_cuts("deepcore", (clean_xy, clean_angle))}
    for name, cuts in (variants or {}).items():
        if name in ("deepcore", "baseline", "baseline_kmeans"):
            raise ValueError(f"cleaning variant {name!r}: the name is taken by a method")
        cleanings[name] = _check_cuts(name, cuts)
    model_path = Path(model_path or SHIPPED_MODEL).resolve()
    _, info = _model(model_path)  # a missing or foreign file, a server down: one error here, before any event
    remote = connect(server, ("deepcore",), fallback, what="deepcore", model=model_path)
    names = ["deepcore_raw", *cleanings, "baseline", "baseline_kmeans"]
    task = partial(_evaluate_event, model_path, det, cleanings, event_options,
                   remote=remote["deepcore"] if remote else None, with_tracks=tracks,
                   track_scale=float(track_threshold_scale))
    with EventRunner(workers, scheduler, progress) as runner:
        per_event = runner.run(task, [seed + i for i in range(n_events)], label="events")
    seeds_all = {m: [e["seeds"][m] for e in per_event] for m in names}
    times = {m: sum(e["times"][m] for e in per_event) for m in names if m != "deepcore_raw"}
    stages = {}
    for e in per_event:
        for key, dt in e["stages"].items():
            stages[key] = stages.get(key, 0.0) + dt
    with_tracks, tracks_all = tracks, [e["tracks"] for e in per_event]
    n_jets = sum(e["jets"] for e in per_event)
    baselines = ("baseline", "baseline_kmeans")
    shared = sum(stages.values())
    tracks = pd.concat(tracks_all, ignore_index=True)
    # particle ids are per event: make them unique over the run before pooling
    tracks["uid"] = tracks["event"].to_numpy(np.int64) * (1 << 40) + tracks["particle_id"].to_numpy()
    result = {"events": n_events, "first_seed": seed, "event_options": event_options, "jets": n_jets,
              "tracks": int(tracks.loc[tracks["selected"], "uid"].nunique()), "model": info}
    per_track, scored = {}, {}
    for name in names:
        s = pd.concat(seeds_all[name], ignore_index=True)
        uid = np.where(s["particle_id"].to_numpy() >= 0,
                       s["event"].to_numpy(np.int64) * (1 << 40) + s["particle_id"].to_numpy(), -1)
        scored[name] = rates(uid, tracks.assign(particle_id=tracks["uid"]))
        per_track[name] = np.isin(tracks["uid"].to_numpy(), uid[uid >= 0])
        seeds_all[name] = s
    for name, (dxy, dangle) in cleanings.items():
        r = scored[name]
        r["seconds_per_event"] = (shared + times[name]) / n_events
        r["cleaning"] = {"dxy_mm": dxy, "dangle": dangle}
        r["stages"] = {**{k: v / n_events for k, v in stages.items()}, "cleaning": times[name] / n_events}
        r["before_cleaning"] = scored["deepcore_raw"]
        result[name] = r
    for name in baselines:
        result[name] = {**scored[name], "seconds_per_event": times[name] / n_events}
    sims = _score_tracks(per_event, result, n_events) if with_tracks else None
    if with_tracks:
        result["track_level"]["deepcore_threshold_scale"] = float(track_threshold_scale)
    if keep:
        del per_track["deepcore_raw"]
        result["records"] = {"tracks": tracks.assign(**{f"found_{m}": f for m, f in per_track.items()}),
                             "seeds": seeds_all}
        if sims is not None:
            result["records"]["sims"] = sims
    return result


def _score_tracks(per_event: list[dict], result: dict, n_events: int) -> pd.DataFrame:
    """Pools the events' built tracks, adds each method's track-level figures and seconds to ``result``; returns
    the simulated tracks with ``found_<method>`` (for the plots)."""
    sims = pd.concat([e["sims"] for e in per_event], ignore_index=True)
    sims["uid"] = sims["event"].to_numpy(np.int64) * (1 << 40) + sims["particle_id"].to_numpy()
    pooled = sims.assign(particle_id=sims["uid"])
    found = {}
    tracks_cleaned = per_event[0].get("track_times", {})  # DeepCore's lists cleaned again at the track scale
    for name in per_event[0]["built"]:
        trk = pd.concat([e["built"][name] for e in per_event], ignore_index=True)
        pid = trk["sim_particle"].to_numpy(np.int64)
        uid = np.where(pid >= 0, trk["event"].to_numpy(np.int64) * (1 << 40) + pid, -1)
        r = track_rates(uid, pooled)
        if name == "deepcore_raw":  # its row is deepcore's before_cleaning; its seeding stops before cleaning
            target = result["deepcore"]["before_cleaning"]
            seeding = result["deepcore"]["seconds_per_event"] - result["deepcore"]["stages"]["cleaning"]
        elif name in tracks_cleaned:  # DeepCore at the track scale: its own cleaning's seconds
            target = result[name]
            seeding = (target["seconds_per_event"] - target["stages"]["cleaning"]
                       + sum(e["track_times"][name] for e in per_event) / n_events)
        else:
            target = result[name]
            seeding = target["seconds_per_event"]
        if name == "deepcore_raw" or name in tracks_cleaned:
            target["track_seeds"] = int(sum(e["track_seeds"][name] for e in per_event))
        building = sum(e["building"][name] for e in per_event) / n_events
        target.update({k: v for k, v in r.items() if k != "sim_tracks"}, seeding_seconds_per_event=seeding,
                      building_seconds_per_event=building, iteration_seconds_per_event=seeding + building)
        found[f"found_{name}"] = np.isin(sims["uid"].to_numpy(), uid[uid >= 0])
    result["track_level"] = {
        "sim_tracks": int(sims.loc[sims["selected"], "uid"].nunique()), "pt_min": TRACK_PT_MIN,
        "association": "chi2 < 25 on (phi, z, psi, cot theta, q/pT) at r = 68 mm with the fitted covariance",
        "strip_hits": f"strip_hits(particles, numpy.random.default_rng((event seed, {STRIP_STREAM})))"}
    return sims.assign(**found)


HEADER = f"{'method':<18}{'efficiency':>11}{'fake':>8}{'duplicate':>11}{'seeds':>8}{'s/event':>10}"


TRACK_HEADER = (f"{'method':<16}{'efficiency':>11}{'fake':>7}{'duplicate':>10}{'tracks':>7}{'seeding':>8}"
                f"{'building':>9}{'total':>8}")


def format_track_row(name: str, r: dict) -> str:
    """One line of the track-level table (seconds per event)."""
    def fmt(x, width):
        return f"{x:>{width}.3f}" if x is not None else f"{'n/a':>{width}}"

    return (f"{name:<16}{fmt(r['track_efficiency'], 11)}{fmt(r['track_fake_rate'], 7)}"
            f"{fmt(r['track_duplicate_rate'], 10)}{r['reco_tracks']:>7d}{r['seeding_seconds_per_event']:>8.4f}"
            f"{r['building_seconds_per_event']:>9.4f}{r['iteration_seconds_per_event']:>8.4f}")


def format_row(name: str, r: dict) -> str:
    """One line of the comparison table (rates without a denominator print as n/a)."""
    def fmt(x, width):
        return f"{x:>{width}.3f}" if x is not None else f"{'n/a':>{width}}"

    return (f"{name:<18}{fmt(r['efficiency'], 11)}{fmt(r['fake_rate'], 8)}{fmt(r['duplicate_rate'], 11)}"
            f"{r['seeds']:>8d}{r['seconds_per_event']:>10.4f}")

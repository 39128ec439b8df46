"""Time per event of the jet-core seeding and of track building through the strips, from each seed list; and
(``--figures``) the whole jet-core iteration scored on tracks with the seed's definitions.

    python benchmarks/deepcore_tracks.py [--events 10] [--seed 0] [--repeat 3]
    python benchmarks/deepcore_tracks.py --figures [--events 30] [--low-events 15] [--seed 0] [--resume]
    python benchmarks/deepcore_tracks.py --tune-start 40 [--tune-seed 500000]
    python benchmarks/deepcore_tracks.py --tune-thresholds 40 [--tune-seed 500000]
    python benchmarks/deepcore_tracks.py --tune-outliers 40 [--tune-seed 500000]
    python benchmarks/deepcore_tracks.py --fakes 40 [--tune-seed 500000]

Events: Pythia 8 QCD dijets as in ``benchmarks/deepcore.py`` (pT-hat 1.8 to 2.4 TeV, jets pT > 1 TeV, |eta| <
1.4; seeds ``--seed`` onwards, none of the shipped model's training seeds), their strip hits
(`deepreco.deepcore.strips`, seeded with (the event's seed, 26)). Seed lists: ``pairs`` (layer-1 / layer-2 pairs along
the jet), ``pairs_kmeans`` (the same after K-means splitting of merged clusters), ``deepcore`` (the shipped
network's cleaned seeds). Each list goes through the same track building (`deepreco.deepcore.tracking`, default
limits). Per event and stage the median of ``--repeat`` runs; settings: 1 thread, 2 threads, and 2 threads with
a ``yes > /dev/null`` process keeping another core busy (threads of torch and of the BLAS; the rest is numpy,
one thread). One warm-up event (the first network call) is not counted.

Also per event: tracks, and the distinct particles they are matched to (a track's particle: the one with most
of its hits, when it has at least 75 % of them). These are counts, not the issue's efficiency (item 3 defines
that, with the seed's cuts): here, tracks are what each seed list lets the building find.

Writes ``benchmarks/results/deepcore_tracks.txt`` and ``.json``.

``--figures``: `deepreco.deepcore.evaluate.evaluate` with ``tracks=True`` (one thread) on three pT-hat slices
(`SLICES`): the seed's 1.8-2.4 TeV with jets above 1 TeV (``--events`` events, seeds ``--seed`` onwards, the
events of ``benchmarks/deepcore.py``), and 0.9-1.8 TeV and 0.3-0.9 TeV with jets above 0.3 TeV (``--low-events``
each, seeds 200,000 and 300,000 onwards: neither the training's 1,000,000 nor the cleaning study's 500,000), so
that the jets span 0.3 to 3 TeV. Per slice and pooled: track efficiency, fake and duplicate rates, tracks, and the
seconds per event of each stage (DeepCore: windows, network, extraction, cleaning; pairs: selection, K-means,
pairs) and of building; the iteration's time as a fraction of the pair seeds' iterations, beside the seed's
2.5 s / 16.6 s = 15 %. The events run in chunks of 5 whose results are kept in ``build/deepcore_track_figures/``
(``--resume`` reuses them). Writes ``deepcore_track_figures.txt`` / ``.json`` and ``deepcore_track_efficiency.png``
(track efficiency against the distance to the jet axis and against jet pT, all slices pooled).

``--tune-start N``: the choice of the building start's extra 1/pT uncertainty (`BuildConfig.seed_qpt_sigma`) on N
tuning events (pT-hat 1.8-2.4 TeV, seeds ``--tune-seed`` onwards: neither the benchmark's nor the training's):
DeepCore's and the K-means pairs' seeds each built with every value of `START_SIGMAS`, one thread; per value the
track efficiency, fake rate and building seconds per event, and the efficiency in bins of the track's pT. Writes
``benchmarks/results/deepcore_start.txt`` and ``.json``. DeepCore's seeds here are at the seed's thresholds (the
value was chosen before the track scale below).

``--tune-thresholds N``: DeepCore's seeds for building taken at `THRESHOLD_SCALES` times the seed's probability
thresholds (`deepreco.deepcore.seeds.TRACK_THRESHOLD_SCALE`), each cleaned as usual and built with the default
limits, on the same tuning events; the same columns plus seeds per event. Writes
``benchmarks/results/deepcore_thresholds.txt`` and ``.json``.

``--tune-outliers N``: the final fit's outlier cut (`BuildConfig.outlier_chi2`, `OUTLIER_CUTS`; 0: none), each seed
list (DeepCore's at the track threshold scale) built with each; ``deepcore_outliers.txt`` / ``.json``. Each tuning
run builds with the defaults chosen before it (start term, then thresholds, then outliers), the later ones off.

``--fakes N``: what the fake tracks (associated with no particle) of DeepCore's and the K-means pairs' iterations
are, on N tuning events: per list the fakes, their purity (share of hits from the particle with most of them),
that particle's pT and production radius, the fitted pT against it, the association chi2 to that particle's own
state, and how many fakes the two lists share (the same particle's track, fake in both). Writes
``benchmarks/results/deepcore_fakes.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path

from hog import busy_core

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = (("1 thread", 1, False), ("2 threads", 2, False), ("2 + busy", 2, True))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


# (name, first event seed offset, pT-hat min, max [GeV], jet pT min [GeV])
SLICES = (("1.8-2.4 TeV", 0, 1800.0, 2400.0, 1000.0), ("0.9-1.8 TeV", 200_000, 900.0, 1800.0, 300.0),
          ("0.3-0.9 TeV", 300_000, 300.0, 900.0, 300.0))
METHODS = ("deepcore", "baseline", "baseline_kmeans")
CHUNK = 5
SEED_RATIO = 2.5 / 16.6


def _chunk(work: Path, name: str, first: int, n: int, options: dict, resume: bool) -> dict:
    """evaluate(tracks=True) on events first .. first + n - 1, kept in ``work`` (pickled, written atomically)."""
    import pandas as pd

    from deepreco.deepcore.evaluate import evaluate

    path = work / f"{name.split()[0]}_{first}_{n}.pkl"
    if resume and path.exists():
        return pd.read_pickle(path)
    r = evaluate(n, first, tracks=True, keep=True, **options)
    records = r.pop("records")
    sims = records["sims"]
    r["sims"] = sims.loc[sims["selected"], ["event", "particle_id", "dr", "jet_pt", "pt",
                                            *(f"found_{m}" for m in METHODS)]].drop_duplicates(["event",
                                                                                              "particle_id"])
    tmp = path.with_name(path.name + ".tmp")
    pd.to_pickle(r, tmp)
    tmp.replace(path)
    return r


def _pool(chunks: list[dict]) -> dict:
    """Track-level figures and seconds per event of several chunks' results together."""
    import pandas as pd

    n = sum(c["events"] for c in chunks)
    sims = pd.concat([c["sims"] for c in chunks], ignore_index=True)
    out = {"events": n, "jets": sum(c["jets"] for c in chunks), "sim_tracks": len(sims)}
    for m in METHODS:
        reco = sum(c[m]["reco_tracks"] for c in chunks)
        fakes = sum(round((c[m]["track_fake_rate"] or 0) * c[m]["reco_tracks"]) for c in chunks)
        dups = sum(round((c[m]["track_duplicate_rate"] or 0) * c[m]["reco_tracks"]) for c in chunks)
        row = {"track_efficiency": float(sims[f"found_{m}"].mean()) if len(sims) else None,
               "track_fake_rate": fakes / reco if reco else None, "track_duplicate_rate": dups / reco if reco else None,
               "reco_tracks": reco}
        for key in ("seeding_seconds_per_event", "building_seconds_per_event", "iteration_seconds_per_event"):
            row[key] = sum(c[m][key] * c["events"] for c in chunks) / n
        if m == "deepcore":
            row["stages"] = {k: sum(c[m]["stages"][k] * c["events"] for c in chunks) / n
                             for k in chunks[0][m]["stages"]}
        out[m] = row
    return out, sims


def figures(args) -> None:
    """The --figures run (module docstring)."""
    import numpy as np
    import torch

    from deepreco.deepcore.evaluate import TRACK_HEADER, format_track_row
    from deepreco.deepcore.plots import plot_efficiency

    torch.set_num_threads(1)
    work = Path(__file__).resolve().parents[1] / "build" / "deepcore_track_figures"
    work.mkdir(parents=True, exist_ok=True)
    per_slice, all_chunks = {}, []
    for name, offset, lo, hi, jet_min in SLICES:
        n_events = args.events if offset == 0 else args.low_events
        first0 = args.seed + offset
        options = {"pthat_min": lo, "pthat_max": hi, "jet_pt_min": jet_min}
        chunks = []
        for first in range(first0, first0 + n_events, CHUNK):
            n = min(CHUNK, first0 + n_events - first)
            chunks.append(_chunk(work, name, first, n, options, args.resume))
            print(f"{name}: events {first}..{first + n - 1} done (load {os.getloadavg()[0]:.1f})", flush=True)
        if chunks:
            per_slice[name] = {"first_seed": first0, "pthat": [lo, hi], "jet_pt_min": jet_min,
                               **_pool(chunks)[0]}
            all_chunks += chunks
    pooled, sims = _pool(all_chunks)
    plot_efficiency(sims.assign(selected=True), RESULTS / "deepcore_track_efficiency.png",
                    title=f"{pooled['events']} dijet events, {pooled['jets']} jets (0.3-3 TeV), "
                          f"{pooled['sim_tracks']} tracks pT > 0.9 GeV, DeltaR < 0.1",
                    ylabel="track efficiency", pt_edges=[300, 500, 700, 1000, 1400, 1800, 2200, 3000])

    def fmt(x):
        return "n/a" if x is None else f"{x:.3f}"

    loads = os.getloadavg()
    lines = [f"# python benchmarks/deepcore_tracks.py --figures --events {args.events} --low-events "
             f"{args.low_events} --seed {args.seed}",
             f"# {platform.platform()}, {len(os.sched_getaffinity(0))} usable cores shared with other jobs, one "
             f"thread (load average at the end {loads[0]:.1f}, {loads[1]:.1f}, {loads[2]:.1f})",
             "# simulated tracks: pT > 0.9 GeV, |eta| < 2.5, r_prod < 3 cm, |z_prod| < 30 cm, DeltaR < 0.1 of a "
             "jet axis, crossing layer 2; a track is associated when chi2 < 25 on its 5 fitted parameters at "
             "r = 68 mm with its fit's covariance",
             "# seconds per event, one thread: seeding (DeepCore: windows + network + extraction + cleaning; pairs: "
             "cluster selection [+ K-means] + pairs) + building (the same track building for every list)"]
    blocks = [*per_slice.items(), ("all slices", pooled)]
    for name, r in blocks:
        extra = (f", pT-hat {r['pthat'][0]:g}-{r['pthat'][1]:g} GeV, jets > {r['jet_pt_min']:g} GeV, seeds "
                 f"{r['first_seed']}.." if "pthat" in r else "")
        lines += ["", f"{name}: {r['events']} events, {r['jets']} jets, {r['sim_tracks']} simulated tracks{extra}",
                  TRACK_HEADER]
        lines += [format_track_row(m, r[m]) for m in METHODS]
        st = r["deepcore"]["stages"]
        lines.append("  deepcore seeding: " + " + ".join(f"{k} {v:.4f}" for k, v in st.items()))
        for ref in ("baseline", "baseline_kmeans"):
            ratio = r["deepcore"]["iteration_seconds_per_event"] / r[ref]["iteration_seconds_per_event"]
            lines.append(f"  deepcore iteration / {ref} iteration: {ratio:.2f} (the seed, CMS: 2.5 s / 16.6 s = "
                         f"{SEED_RATIO:.2f}; aim <= 0.30)")
        d = r["deepcore"]
        for ref in ("baseline", "baseline_kmeans"):
            b = r[ref]
            eff_ok = d["track_efficiency"] is not None and d["track_efficiency"] > b["track_efficiency"]
            fake_ok = d["track_fake_rate"] is not None and d["track_fake_rate"] <= 0.5 * b["track_fake_rate"]
            lines.append(f"  aims against {ref}: efficiency above ({fmt(d['track_efficiency'])} vs "
                         f"{fmt(b['track_efficiency'])}): {'met' if eff_ok else 'not met'}; fakes at most half "
                         f"({fmt(d['track_fake_rate'])} vs {fmt(b['track_fake_rate'])}): "
                         f"{'met' if fake_ok else 'not met'}")
    # efficiency against jet pT, the distance to the axis and the track's pT, all slices, for the table
    lines.append("")
    for var, label, edges in (("jet_pt", "jet pT [GeV]", [300, 500, 700, 1000, 1400, 1800, 2200, 3000]),
                              ("dr", "DeltaR(track, jet axis)", [0, 0.02, 0.04, 0.06, 0.08, 0.1]),
                              ("pt", "track pT [GeV]", [0.9, 1.5, 3, 10, 30, 100, 10000])):
        edges = np.asarray(edges, float)
        idx = np.digitize(sims[var].to_numpy(), edges) - 1
        lines.append(f"track efficiency against {label} (all slices; {' / '.join(METHODS)}):")
        lines += [f"  {edges[i]:g}-{edges[i + 1]:g} ({int((idx == i).sum())} tracks): " + " / ".join(
            f"{sims.loc[idx == i, f'found_{m}'].mean():.3f}" for m in METHODS)
            for i in range(len(edges) - 1) if (idx == i).any()]
    RESULTS.mkdir(exist_ok=True)
    _write(RESULTS / "deepcore_track_figures.txt", "\n".join(lines) + "\n")
    _write(RESULTS / "deepcore_track_figures.json", json.dumps(
        {"slices": per_slice, "pooled": pooled, "seed_ratio": SEED_RATIO}, indent=1, default=float) + "\n")
    print("\n".join(lines))


START_SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)
THRESHOLD_SCALES = (1.0, 0.8, 0.6, 0.4, 0.2)
OUTLIER_CUTS = (0.0, 30.0, 20.0, 12.0, 9.0, 6.0, 4.0)
PT_BINS = (0.9, 1.5, 3.0, 10.0, 30.0, 100.0, 1e4)


def tune_start(args) -> None:
    """The --tune-start run (module docstring)."""
    from deepreco.deepcore.tracking import BuildConfig

    _tune(args, args.tune_start, "start", "sigma", {
        name: [(sg, 1.0, BuildConfig(seed_qpt_sigma=sg, outlier_chi2=0.0)) for sg in START_SIGMAS]
        for name in ("deepcore", "baseline_kmeans")})


def tune_thresholds(args) -> None:
    """The --tune-thresholds run (module docstring)."""
    from deepreco.deepcore.tracking import BuildConfig

    _tune(args, args.tune_thresholds, "thresholds", "scale",
          {"deepcore": [(sc, sc, BuildConfig(outlier_chi2=0.0)) for sc in THRESHOLD_SCALES],
           "baseline_kmeans": [(1.0, 1.0, BuildConfig(outlier_chi2=0.0))]})


def tune_outliers(args) -> None:
    """The --tune-outliers run (module docstring)."""
    from deepreco.deepcore.seeds import TRACK_THRESHOLD_SCALE
    from deepreco.deepcore.tracking import BuildConfig

    _tune(args, args.tune_outliers, "outliers", "cut",
          {"deepcore": [(c, TRACK_THRESHOLD_SCALE, BuildConfig(outlier_chi2=c)) for c in OUTLIER_CUTS],
           "baseline_kmeans": [(c, 1.0, BuildConfig(outlier_chi2=c)) for c in OUTLIER_CUTS]})


def _tune(args, n_events: int, what: str, knob: str, settings: dict) -> None:
    """Each seed list (``deepcore`` or ``baseline_kmeans``) built under each of its settings, (label, DeepCore's
    threshold scale, BuildConfig), on ``n_events`` tuning events; the table in deepcore_<what>.txt / .json."""
    import numpy as np
    import pandas as pd
    import torch

    from deepreco.deepcore import evaluate as ev_mod
    from deepreco.deepcore.baseline import jetcore_seeds
    from deepreco.deepcore.detector import PixelBarrel
    from deepreco.deepcore.events import make_event
    from deepreco.deepcore.seeds import above
    from deepreco.deepcore.strips import strip_hits
    from deepreco.deepcore.tracking import build_tracks
    from deepreco.deepcore.train import load_model

    torch.set_num_threads(1)
    det = PixelBarrel()
    net, _ = load_model(ev_mod.SHIPPED_MODEL)
    low = min(sc for opts in settings.values() for _, sc, _ in opts)

    def deepcore(ev, scale):  # the network once an event, every scale from its output, each cleaned
        return ev_mod.clean_seeds(above(raw_cache[ev.event_id], scale))

    lists = {"deepcore": deepcore, "baseline_kmeans": lambda ev, scale: jetcore_seeds(ev, det, split=True)}
    raw_cache: dict = {}
    sims_all, counts = [], {}
    for i in range(n_events):
        seed = args.tune_seed + i
        ev = make_event(seed, pthat_min=1800.0, pthat_max=2400.0, jet_pt_min=1000.0)
        strips = strip_hits(ev.particles, np.random.default_rng((seed, ev_mod.STRIP_STREAM)))
        sims = ev_mod.sim_tracks(ev, pt_min=ev_mod.TRACK_PT_MIN)
        states = ev_mod.sim_states(sims, det.radii[1], det.field_t)
        chosen = sims.loc[sims["selected"], ["particle_id", "pt"]].drop_duplicates("particle_id").copy()
        raw_cache.clear()
        raw_cache[ev.event_id] = ev_mod.raw_deepcore_seeds(ev, net, det, scale=low)[0]
        for name, opts in settings.items():
            for label, scale, config in opts:
                seeds = lists[name](ev, scale)
                t0 = time.perf_counter()
                trk, _ = build_tracks(ev, strips, seeds, config, pixel=det)
                dt = time.perf_counter() - t0
                pid, _ = ev_mod.associate_tracks(trk, states, sims["particle_id"].to_numpy())
                chosen[f"{name} {label}"] = chosen["particle_id"].isin(pid[pid >= 0])
                c = counts.setdefault((name, label), [0, 0, 0.0, 0])
                c[0], c[1], c[2], c[3] = c[0] + len(trk), c[1] + int((pid < 0).sum()), c[2] + dt, c[3] + len(seeds)
        sims_all.append(chosen)
        print(f"event {seed} done", flush=True)
    df = pd.concat(sims_all, ignore_index=True)
    bins = pd.cut(df["pt"], PT_BINS)
    labels = [f"{a:g}-{b:g}" for a, b in zip(PT_BINS[:-1], PT_BINS[1:], strict=True)]
    lines = [f"# python benchmarks/deepcore_tracks.py --tune-{what} {n_events} --tune-seed {args.tune_seed}",
             f"# {platform.platform()}, 2 usable cores, one thread (load average at the end "
             f"{', '.join(f'{x:.1f}' for x in os.getloadavg())})",
             f"# events {args.tune_seed}..{args.tune_seed + n_events - 1}, pT-hat 1.8-2.4 TeV, jets > 1 TeV; "
             f"{len(df)} simulated tracks (the benchmark's definitions); efficiency per track pT bin [GeV]", "",
             f"{'seeds':16s} {knob:>5s} {'eff':>6s} {'fake':>6s} {'tracks':>6s} {'seeds':>6s} {'build s':>7s}  "
             + " ".join(f"{lab:>8s}" for lab in labels)]
    data = {"events": n_events, "first_seed": args.tune_seed, "sim_tracks": len(df), "pt_bins": labels,
            "rows": []}
    for name, opts in settings.items():
        for label, _, _ in opts:
            col = f"{name} {label}"
            n_trk, n_fake, t, n_seeds = counts[(name, label)]
            per_bin = df.groupby(bins, observed=False)[col].mean().to_numpy()
            eff = float(df[col].mean())
            lines.append(f"{name:16s} {label:5.2f} {eff:6.3f} {n_fake / max(n_trk, 1):6.3f} {n_trk:6d} "
                         f"{n_seeds / n_events:6.1f} {t / n_events:7.4f}  " + " ".join(f"{x:8.3f}" for x in per_bin))
            data["rows"].append({"seeds": name, knob: label, "track_efficiency": eff,
                                 "track_fake_rate": n_fake / max(n_trk, 1), "tracks": n_trk,
                                 "seeds_per_event": n_seeds / n_events,
                                 "building_seconds_per_event": t / n_events,
                                 "efficiency_per_pt_bin": [None if np.isnan(x) else float(x) for x in per_bin]})
    lines.append("tracks per pT bin: " + " ".join(f"{lab} {int((bins == iv).sum())}"
                                                  for lab, iv in zip(labels, bins.cat.categories, strict=True)))
    text = "\n".join(lines) + "\n"
    print(text)
    _write(RESULTS / f"deepcore_{what}.txt", text)
    _write(RESULTS / f"deepcore_{what}.json", json.dumps(data, indent=1) + "\n")


def fakes(args) -> None:
    """The --fakes run (module docstring)."""
    import numpy as np
    import pandas as pd
    import torch

    from deepreco.deepcore import evaluate as ev_mod
    from deepreco.deepcore.baseline import jetcore_seeds
    from deepreco.deepcore.detector import PixelBarrel
    from deepreco.deepcore.events import make_event
    from deepreco.deepcore.seeds import TRACK_THRESHOLD_SCALE
    from deepreco.deepcore.strips import strip_hits
    from deepreco.deepcore.tracking import build_tracks
    from deepreco.deepcore.train import load_model

    torch.set_num_threads(1)
    det = PixelBarrel()
    net, _ = load_model(ev_mod.SHIPPED_MODEL)
    lists = {"deepcore": lambda ev: ev_mod.deepcore_seeds(ev, net, det, scale=TRACK_THRESHOLD_SCALE)[0],
             "baseline_kmeans": lambda ev: jetcore_seeds(ev, det, split=True)}
    rows, n_tracks = [], dict.fromkeys(lists, 0)
    for i in range(args.fakes):
        seed = args.tune_seed + i
        ev = make_event(seed, pthat_min=1800.0, pthat_max=2400.0, jet_pt_min=1000.0)
        strips = strip_hits(ev.particles, np.random.default_rng((seed, ev_mod.STRIP_STREAM)))
        sims = ev_mod.sim_tracks(ev, pt_min=ev_mod.TRACK_PT_MIN)
        states = ev_mod.sim_states(sims, det.radii[1], det.field_t)
        part = ev.particles.set_index("particle_id")
        for name, make in lists.items():
            trk, _ = build_tracks(ev, strips, make(ev), pixel=det)
            pid, _ = ev_mod.associate_tracks(trk, states, sims["particle_id"].to_numpy())
            n_tracks[name] += len(trk)
            fake = trk[pid < 0]
            # the association chi2 to the majority particle's own state (inf when it does not cross layer 2)
            own = np.full(len(fake), np.inf)
            for k, (_, t) in enumerate(fake.iterrows()):
                j = np.flatnonzero(sims["particle_id"].to_numpy() == t["particle_id"])
                if len(j):
                    _, c = ev_mod.associate_tracks(fake.iloc[[k]], states[j], sims["particle_id"].to_numpy()[j])
                    own[k] = c[0]
            maj = part.reindex(fake["particle_id"].to_numpy())
            rows.append(pd.DataFrame({"event": seed, "list": name, "particle_id":
                                      fake["particle_id"].to_numpy(), "purity": fake["purity"].to_numpy(),
                                      "pt": fake["pt"].to_numpy(), "maj_pt": np.hypot(maj["px"], maj["py"]).to_numpy(),
                                      "maj_r": np.hypot(maj["vx"], maj["vy"]).to_numpy(), "chi2_own": own}))
        print(f"event {seed} done", flush=True)
    df = pd.concat(rows, ignore_index=True)
    lines = [f"# python benchmarks/deepcore_tracks.py --fakes {args.fakes} --tune-seed {args.tune_seed}",
             f"# {platform.platform()}; events {args.tune_seed}..{args.tune_seed + args.fakes - 1}, pT-hat 1.8-2.4 "
             "TeV, jets > 1 TeV; a fake: a track associated with no particle (chi2 >= 25 to every one)", ""]
    keys = {n: set(zip(g["event"], g["particle_id"], strict=True)) for n, g in df.groupby("list")}
    for name in lists:
        g = df[df["list"] == name]
        if len(g) == 0:
            lines.append(f"{name}: no fakes in {n_tracks[name]} tracks")
            continue
        prompt = g["maj_r"] < 30
        lines += [f"{name}: {len(g)} fakes of {n_tracks[name]} tracks",
                  f"  purity >= 0.75: {(g['purity'] >= 0.75).sum()}, median purity {g['purity'].median():.3f}",
                  f"  majority particle from r < 30 mm: {prompt.sum()}; its pT median {g['maj_pt'].median():.1f} "
                  f"GeV; fitted pT / its pT, median {np.median(g['pt'] / g['maj_pt']):.3f}",
                  f"  association chi2 to that particle: 25-50 {((g['chi2_own'] >= 25) & (g['chi2_own'] < 50)).sum()}"
                  f", 50-200 {((g['chi2_own'] >= 50) & (g['chi2_own'] < 200)).sum()}, above "
                  f"{(g['chi2_own'] >= 200).sum()} (of which no layer-2 crossing: {np.isinf(g['chi2_own']).sum()})"]
    shared = keys.get("deepcore", set()) & keys.get("baseline_kmeans", set())
    lines.append(f"fakes of the same particle in both lists: {len(shared)}")
    text = "\n".join(lines) + "\n"
    print(text)
    _write(RESULTS / "deepcore_fakes.txt", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--figures", action="store_true", help="the track-level figures (module docstring)")
    parser.add_argument("--low-events", type=int, default=15, help="--figures: events of each lower pT-hat slice")
    parser.add_argument("--resume", action="store_true", help="--figures: reuse the chunks already done")
    parser.add_argument("--tune-start", type=int, default=0, help="the start's 1/pT term on N tuning events")
    parser.add_argument("--tune-thresholds", type=int, default=0, help="DeepCore's threshold scale, N tuning events")
    parser.add_argument("--tune-outliers", type=int, default=0, help="the final fit's outlier cut, N tuning events")
    parser.add_argument("--fakes", type=int, default=0, help="what the fake tracks are, on N tuning events")
    parser.add_argument("--tune-seed", type=int, default=500_000, help="--tune-*, --fakes: the first event's seed")
    args = parser.parse_args()
    if args.events < 1 or min(args.low_events, args.tune_start, args.tune_thresholds, args.tune_outliers,
                              args.fakes) < 0:
        parser.error("--events must be at least 1, --low-events, --tune-start, --tune-thresholds and --fakes at "
                     "least 0")
    if args.fakes:
        fakes(args)
        return
    if args.tune_start:
        tune_start(args)
        return
    if args.tune_thresholds:
        tune_thresholds(args)
        return
    if args.tune_outliers:
        tune_outliers(args)
        return
    if args.figures:
        figures(args)
        return
    # a terminated run still ends its busy process (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from deepreco.deepcore.baseline import jetcore_seeds
    from deepreco.deepcore.detector import PixelBarrel
    from deepreco.deepcore.evaluate import SHIPPED_MODEL, deepcore_seeds
    from deepreco.deepcore.events import make_event
    from deepreco.deepcore.seeds import TRACK_THRESHOLD_SCALE
    from deepreco.deepcore.strips import strip_hits
    from deepreco.deepcore.tracking import BuildConfig, build_tracks
    from deepreco.deepcore.train import load_model

    det = PixelBarrel()
    net, _ = load_model(SHIPPED_MODEL)
    methods = {"pairs": lambda ev: jetcore_seeds(ev, det),
               "pairs_kmeans": lambda ev: jetcore_seeds(ev, det, split=True),
               "deepcore": lambda ev: deepcore_seeds(ev, net, det, scale=TRACK_THRESHOLD_SCALE)[0]}
    events = []
    for i in range(args.events + 1):
        ev = make_event(args.seed + i)
        events.append((ev, strip_hits(ev.particles, np.random.default_rng((args.seed + i, 26)))))
    warm, events = events[0], events[1:]

    def timed(f):
        out, times = None, []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = f()
            times.append(time.perf_counter() - t0)
        return out, float(np.median(times))

    rows = []
    for setting, threads, busy in SETTINGS:
        hog = busy_core() if busy else None
        try:
            torch.set_num_threads(threads)
            with threadpool_limits(threads):
                for seed in methods.values():  # warm-up
                    build_tracks(warm[0], warm[1], seed(warm[0]))
                for ev, sh in events:
                    load = os.getloadavg()[0]
                    for name, seed in methods.items():
                        seeds, t_seed = timed(lambda ev=ev, seed=seed: seed(ev))
                        (tracks, _), t_build = timed(lambda ev=ev, sh=sh, seeds=seeds: build_tracks(ev, sh, seeds))
                        matched = tracks.loc[tracks["purity"] >= 0.75, "particle_id"].nunique()
                        rows.append({"setting": setting, "event": int(ev.event_id), "method": name,
                                     "jets": len(ev.jets), "clusters": len(ev.clusters), "strip_hits": len(sh),
                                     "seeds": len(seeds), "seconds_seeding": t_seed, "seconds_building": t_build,
                                     "seconds_total": t_seed + t_build, "tracks": len(tracks),
                                     "particles_found": int(matched), "load": load})
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()

    cfg = BuildConfig()
    lines = [f"# python benchmarks/deepcore_tracks.py --events {args.events} --seed {args.seed} "
             f"--repeat {args.repeat}",
             f"# {platform.platform()}, {len(os.sched_getaffinity(0))} usable cores shared with other jobs "
             f"(load average {min(r['load'] for r in rows):.1f} to {max(r['load'] for r in rows):.1f} at the events)",
             f"# dijet events {args.seed + 1}..{args.seed + args.events} (event {args.seed}: warm-up); building "
             f"limits: {cfg}",
             "# per event, mean over the events (each stage the median of the repeats): seconds of seeding, "
             "of building, total; seeds, tracks, distinct particles matched",
             "", f"{'setting':10s} {'method':13s} {'seeding':>8s} {'building':>8s} {'total':>8s} {'seeds':>7s} "
                 f"{'tracks':>7s} {'found':>7s}"]
    summary = {}
    for setting, _, _ in SETTINGS:
        for name in methods:
            sel = [r for r in rows if r["setting"] == setting and r["method"] == name]
            mean = {k: float(np.mean([r[k] for r in sel])) for k in (
                "seconds_seeding", "seconds_building", "seconds_total", "seeds", "tracks", "particles_found")}
            summary.setdefault(setting, {})[name] = mean
            lines.append(f"{setting:10s} {name:13s} {mean['seconds_seeding']:8.3f} {mean['seconds_building']:8.3f} "
                         f"{mean['seconds_total']:8.3f} {mean['seeds']:7.1f} {mean['tracks']:7.1f} "
                         f"{mean['particles_found']:7.1f}")
        s = summary[setting]
        ratio = s["deepcore"]["seconds_total"] / s["pairs_kmeans"]["seconds_total"]
        lines.append(f"{setting:10s} deepcore / pairs_kmeans time: {ratio:.2f} (the seed's CMS figure: 2.5 s / 16.6 s"
                     " = 0.15)")
    RESULTS.mkdir(exist_ok=True)
    _write(RESULTS / "deepcore_tracks.txt", "\n".join(lines) + "\n")
    _write(RESULTS / "deepcore_tracks.json", json.dumps({"summary": summary, "events": rows}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

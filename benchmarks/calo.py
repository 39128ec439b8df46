"""Calorimeter clustering benchmark (seed 002): CLUE against GravNet and DGCNN with object condensation, and
the DRN's energies, on the same simulated events.

    python benchmarks/calo.py                   # 100 events, the distance scan, the time scan up to ~100k hits
    python benchmarks/calo.py --events 20 --quick
    python benchmarks/calo.py --parts limit isolated close   # issue 23: the limit, isolated particles, pairs
    python benchmarks/calo.py --parts isolated               # against the perfect clustering of the same events
    python benchmarks/calo.py --parts taus --tau-events 10 3 1 1   # taus at mu = 0, 50, 140, 200 [--resume]
    python benchmarks/calo.py --parts gun [--seed 7]             # the main table alone (calo_gun_seed<S>.md)
    python benchmarks/calo.py --parts gun isolated close --methods clue garnet --tag garnet   # other methods:
                                                                 # their own files, calo_gun_seed0_garnet.md, ...
    python benchmarks/calo.py --parts taus --tau-methods clue garnet --tag garnet   # (taus: --tau-methods)

Writes benchmarks/results/calo.json, calo.md (the README table) and calo_*.png; the issue-23 parts write
calo_limit.*, calo_isolated.*, calo_close.*, calo_taus.* and calo_taus_time.* (see ``deepreco.calo.limit``,
``deepreco.calo.isolated`` and ``deepreco.calo.pileup``).
Timings are one torch thread on whatever else runs on the machine at the time, after one warm-up call of each
method (numba's kernels load once a process, see ``deepreco.calo.evaluate.warm_up``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hog import busy_core

from deepreco.calo import isolated, limit, pileup, plots
from deepreco.calo.evaluate import DEFAULT_METHODS, efficiency_vs_distance, evaluate, timing_vs_hits
from deepreco.calo.methods import get_method
from deepreco.calo.simulate import gun_events


def _f(v, digits=3):
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def table(result: dict) -> str:
    lines = [f"{result['events']} gun events (seed {result['seed']}), {result['hits_per_event']:.0f} hits an event; "
             "efficiency / fake rate as in `deepreco.calo.metrics`; resolution = 68 % half-width / median of "
             "E_reco / E_true of found particles.", "",
             "| method | efficiency | fake rate | response | resolution | EM res. | had. res. | MIP eff. | "
             "hit class acc. | s / event (wall) | CPU s / event | peak MB |", "|" + " --- |" * 12]
    for name, s in result["methods"].items():
        k = s["per_kind"]
        lines.append(f"| {name} | {_f(s['efficiency'])} | {_f(s['fake_rate'])} | {_f(s['energy_response'])} | "
                     f"{_f(s['energy_resolution'])} | {_f(k['em']['energy_resolution'])} | "
                     f"{_f(k['had']['energy_resolution'])} | {_f(k['mip']['efficiency'])} | "
                     f"{_f(s.get('hit_class_accuracy'))} | {_f(s['seconds_per_event'])} | "
                     f"{_f(s['cpu_seconds_per_event'])} | {s['peak_memory_mb']:.0f} |")
    lines += ["", f"On the {result.get('common_particles', 0)} showering particles that every method found "
              "(the same sample for all):", "", "| method | response | resolution | EM res. | had. res. |",
              "|" + " --- |" * 5]
    for name, s in result["methods"].items():
        c = s.get("common", {})
        lines.append(f"| {name} | {_f(c.get('energy_response'))} | {_f(c.get('energy_resolution'))} | "
                     f"{_f(c.get('em_resolution'))} | {_f(c.get('had_resolution'))} |")
    return "\n".join(lines)


def markdown(df) -> str:
    """A DataFrame as a markdown table (without the optional tabulate package)."""
    df = df.reset_index()
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rows = ["| " + " | ".join(_f(v) if isinstance(v, float) else str(v) for v in row) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, "|" + " --- |" * len(df.columns), *rows])


def limit_part(args, log) -> pd.DataFrame:
    """The perfect clustering's resolution per species and energy, and the fitted terms."""
    events = limit.isolated_events(n_per=args.limit_per, seed=args.seed)
    table = limit.limit_table(limit.perfect_particles(events))
    fits = limit.fits(table)
    md = (f"The limit: a perfect clustering (each particle's own hits, calibrated), {args.limit_per} isolated "
          f"particles per species and energy (seed {args.seed}); scale = median deposited / E (the calibration "
          "it needs), resolution = 68 % half-width / median; a muon's deposit does not follow its energy.\n\n"
          + markdown(table.pivot(index="energy", columns="species", values="resolution"))
          + "\n\nScale (median deposited / E):\n\n"
          + markdown(table.pivot(index="energy", columns="species", values="scale"))
          + "\n\nFit sigma/E = sqrt(a^2/E + b^2 + c^2/E^2) (E in GeV, quadrature sum), 2-200 GeV:\n\n"
          + markdown(fits.set_index("species")))
    (args.out / "calo_limit.md").write_text(md + "\n")
    (args.out / "calo_limit.json").write_text(json.dumps({"table": table.to_dict("records"),
                                                          "fits": fits.to_dict("records")}, indent=1))
    log(md)
    return table


def isolated_part(args, log) -> None:
    """Every method on isolated particles against the limit (the perfect clustering of the same events), and the
    breakdown of the gun events' losses."""
    events = limit.isolated_events(n_per=args.isolated_per, seed=args.seed + 1)
    summary, per_energy = isolated.judge(args.methods, events, models_dir=args.models_dir)
    gun = list(gun_events(args.events, seed=args.seed))
    loss = isolated.breakdown(isolated.losses(_clusterers(args), gun, args.models_dir))
    md = (f"Isolated particles: {args.isolated_per} events of one particle per species and energy (2, 5, 10, 20, "
          f"50, 100, 200 GeV; seed {args.seed + 1}), truth at the level of the shot particle. Efficiency above "
          "5 GeV:\n\n" + markdown(summary.pivot(index="method", columns="species", values="efficiency"))
          + "\n\nMedian response of the found particles above 5 GeV:\n\n"
          + markdown(summary.pivot(index="method", columns="species", values="response"))
          + "\n\nResolution / the limit's (the perfect clustering of the same events), per energy:\n\n"
          + markdown(per_energy[per_energy["species"] != "muon"].pivot_table(
              index=["species", "energy"], columns="method", values="ratio"))
          + "\n\nEfficiency per energy:\n\n"
          + markdown(per_energy.pivot_table(index=["species", "energy"], columns="method", values="efficiency"))
          + f"\n\nWhere the {args.events} gun events (seed {args.seed}) lose particles: muons, secondaries "
          "(tracker brems, muons' photons), showering primaries with a particle of >= 0.3 of their energy within "
          "100 mm at the face ('near'), the rest ('alone'):\n\n" + markdown(loss.set_index("method")))
    (args.out / f"calo_isolated{args.tag}.md").write_text(md + "\n")
    (args.out / f"calo_isolated{args.tag}.json").write_text(json.dumps({
        "summary": summary.to_dict("records"), "per_energy": per_energy.to_dict("records"),
        "losses": loss.to_dict("records")}, indent=1))
    log(md)


def close_part(args, log) -> None:
    """The distance scans (two photons; a photon next to a charged pion), every clustering method."""
    clusterers = _clusterers(args)
    distances = (10, 20, 30, 50, 80, 120, 200)
    parts, md = [], []
    for label, species in (("two 20 GeV photons", (22, 22)), ("20 GeV photon + 20 GeV pi+", (22, 211))):
        d = efficiency_vs_distance(clusterers, distances, n_per=args.close_per, seed=args.seed, species=species,
                                   models_dir=args.models_dir).assign(pair=label)
        parts.append(d)
        md.append(f"Efficiency (both particles counted), {label}, {args.close_per} events a distance:\n\n"
                  + markdown(d.pivot(index="distance_mm", columns="method", values="efficiency")))
    dist = pd.concat(parts, ignore_index=True)
    (args.out / f"calo_close{args.tag}.md").write_text("\n\n".join(md) + "\n")
    (args.out / f"calo_close{args.tag}.json").write_text(json.dumps(dist.to_dict("records"), indent=1))
    plots.close_pairs(dist, args.out / f"calo_close{args.tag}.png")
    log("\n\n".join(md))


def _clusterers(args) -> tuple[str, ...]:
    """The clustering methods of ``--methods`` (the +drn ones left out: the scans count particles; superclusters,
    +sc, are kept)."""
    return tuple(m for m in args.methods if "+drn" not in m)


def taus_part(args, log) -> None:
    """Hadronic taus at each pile-up mu: the hard particles' efficiency, fakes, resolution, time (one thread)."""
    mus = tuple(args.mus)
    events_at = dict(zip(mus, args.tau_events, strict=True)) if len(args.tau_events) > 1 else None
    parts = []
    done = _taus_done(args) if args.resume else {}
    for mu in mus:  # the files are written after each mu: a run stopped at a high mu keeps the lower ones
        if mu in done:
            log(f"mu {mu:g}: the figures of the earlier run ({args.out / 'calo_taus.json'})")
            parts.append(done[mu])
            continue
        parts.append(pileup.evaluate(args.tau_methods, (mu,), args.tau_events[0], args.seed, args.models_dir,
                                     events_at=events_at, log=log, max_mu={"edgeconv": args.edgeconv_max_mu},
                                     cache=args.tau_cache))
        summary, per_event = (pd.concat(p, ignore_index=True) for p in zip(*parts, strict=True))
        _write_taus(args, summary, per_event, log)


def _taus_done(args) -> dict:
    """{mu: (summary, per_event)} of an earlier run's calo_taus.json with this seed, these methods and as many
    events at that mu as asked (--resume): the events depend on (seed, index) alone, so they are the same."""
    path = args.out / f"calo_taus{args.tag}.json"
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    summary, per_event = pd.DataFrame(old["summary"]), pd.DataFrame(old["per_event"])
    if old.get("seed") != args.seed or not len(summary):
        return {}
    wanted = dict(zip(args.mus, args.tau_events, strict=True)) if len(args.tau_events) > 1 else {}
    done = {}
    for mu, rows in summary.groupby("mu", sort=False):
        expected = {m for m in args.tau_methods if mu <= args.edgeconv_max_mu or not m.startswith("edgeconv")}
        if set(rows["method"]) == expected and (rows["events"] == wanted.get(mu, args.tau_events[0])).all():
            done[mu] = (rows, per_event[per_event["mu"] == mu])
    return done


def _write_taus(args, summary, per_event, log) -> None:
    cols = ["efficiency", "fakes_per_event", "pileup_clusters_per_event", "response", "resolution",
            "em_resolution", "had_resolution", "seconds_per_event", "cpu_seconds_per_event"]
    counts = summary.groupby("mu").agg(events=("events", "first"), hits=("hits_per_event", "first"),
                                       hard=("hard_particles", "first"))
    md = [f"Hadronic taus (2-4 an event, 10-100 GeV, both endcaps) with Poisson(mu) Pythia 8 pile-up (seed "
          f"{args.seed}; the same taus at every mu); the figures are for the hard particles (the tau decay "
          f"products) of >= {pileup.HARD_MIN_ENERGY:g} GeV, fakes are clusters of >= {pileup.FAKE_MIN_ENERGY:g} GeV "
          "that found no particle at all, pile-up clusters those that found a pile-up particle "
          "(`deepreco.calo.pileup`). Times: one thread, on a machine shared with other jobs; edgeconv only up to "
          f"mu = {args.edgeconv_max_mu:g} ('-': not run).", "",
          "Events, hits an event, hard particles:", "", markdown(counts)]
    for col in cols:
        md += ["", f"{col}:", "", markdown(summary.pivot(index="mu", columns="method", values=col)[
            [m for m in args.tau_methods if m in set(summary["method"])]])]
    text = "\n".join(md)
    (args.out / f"calo_taus{args.tag}.md").write_text(text + "\n")
    (args.out / f"calo_taus{args.tag}.json").write_text(json.dumps({
        "seed": args.seed, "mus": summary["mu"].unique().tolist(), "summary": summary.to_dict("records"),
        "per_event": per_event.to_dict("records")}, indent=1))
    log(text)


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _time_worker(threads: int, methods, events_file, models_dir, queue) -> None:
    """One timing run in a process of its own, so that torch and numba take ``threads`` from the start."""
    import pickle

    from deepreco.threads import set_threads

    set_threads(threads)
    events = pickle.loads(Path(events_file).read_bytes())
    queue.put(pileup.time_against_pileup(methods, events, models_dir=models_dir).to_dict("records"))


def taus_time_part(args, log) -> None:
    """Seconds per tau event against mu: one thread, two, and two with a process spinning on one core."""
    import multiprocessing as mp
    import os
    import pickle
    import tempfile

    ctx = mp.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        events_file = Path(tmp) / "events.pickle"  # simulated once, the same events for every setting
        events_file.write_bytes(pickle.dumps({mu: pileup.cached_tau_event(0, args.seed, mu, args.tau_cache)
                                              for mu in args.time_mus}))
        for label, threads, busy in (("1 thread", 1, False), ("2 threads", 2, False),
                                     ("2 threads, other core busy", 2, True)):
            spinner = busy_core() if busy else None  # dies with this benchmark, however it ends
            # the child imports numpy and torch (this module) before it runs: their thread pools (OpenBLAS
            # too) must see the count in the environment it starts with
            saved = {v: os.environ.get(v) for v in _THREAD_VARS}
            os.environ.update({v: str(threads) for v in _THREAD_VARS})
            try:
                load = os.getloadavg()[0]
                queue = ctx.Queue()
                proc = ctx.Process(target=_time_worker, args=(threads, args.tau_time_methods, events_file,
                                                              args.models_dir, queue))
                proc.start()
                part = pd.DataFrame(queue.get())
                proc.join()
            finally:
                for v, value in saved.items():
                    os.environ.pop(v) if value is None else os.environ.update({v: value})
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
            rows.append(part.assign(setting=label, load_at_start=load, load_at_end=os.getloadavg()[0]))
            log(f"{label} (load average {load:.1f}):\n" + markdown(part.pivot_table(
                index=["mu", "hits"], columns="method", values="seconds", sort=False)))
    table = pd.concat(rows, ignore_index=True)
    md = [f"Wall seconds for one tau event (seed {args.seed}, event 0) at each mu, after a warm-up; the machine was "
          "shared with other jobs (load average at the start of each setting in the JSON); CPU seconds there too."]
    for label, part in table.groupby("setting", sort=False):
        md += ["", f"{label} (load average at start {part['load_at_start'].iloc[0]:.1f}):", "",
               markdown(part.pivot_table(index=["mu", "hits"], columns="method", values="seconds", sort=False)),
               "", "CPU seconds of the process:", "",
               markdown(part.pivot_table(index=["mu", "hits"], columns="method", values="cpu_seconds", sort=False))]
    (args.out / f"calo_taus_time{args.tag}.md").write_text("\n".join(md) + "\n")
    (args.out / f"calo_taus_time{args.tag}.json").write_text(json.dumps(table.to_dict("records"), indent=1))
    plots.time_vs_pileup(table, args.out / f"calo_time_vs_pileup{args.tag}.png")
    log("\n".join(md))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["main"],
                        choices=["main", "gun", "limit", "isolated", "close", "taus", "taus_time"])
    parser.add_argument("--limit-per", type=int, default=100, help="particles per species and energy (limit)")
    parser.add_argument("--isolated-per", type=int, default=20, help="events per species and energy (methods)")
    parser.add_argument("--close-per", type=int, default=20, help="events per distance (pairs)")
    parser.add_argument("--mus", type=float, nargs="+", default=list(pileup.MUS), help="pile-up mu (taus)")
    parser.add_argument("--tau-events", type=int, nargs="+", default=[10],
                        help="tau events at every mu, or one count per --mus")
    parser.add_argument("--tau-methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--tau-time-methods", nargs="+", default=["clue", "gravnet", "clue+drn", "gravnet+drn"])
    parser.add_argument("--time-mus", type=float, nargs="+", default=[0, 50, 200], help="mu values (taus_time)")
    parser.add_argument("--resume", action="store_true", help="taus: keep the mu values calo_taus.json has")
    parser.add_argument("--tau-cache", type=Path,
                        help="taus, taus_time: a folder that keeps the simulated events for other runs")
    parser.add_argument("--edgeconv-max-mu", type=float, default=50,
                        help="edgeconv only up to this mu (106 s an event at mu = 50 on a loaded core)")
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smaller distance and time scans")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                        help="methods of the gun, isolated and close parts (default: the README's)")
    parser.add_argument("--tag", default="",
                        help="added to the file names of the gun, isolated, close, taus and taus_time parts")
    args = parser.parse_args(argv)
    args.tag = f"_{args.tag}" if args.tag else ""
    torch.set_num_threads(1)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    args.out.mkdir(parents=True, exist_ok=True)
    if "limit" in args.parts:
        limit_part(args, log)
    if "isolated" in args.parts:
        isolated_part(args, log)
    if "close" in args.parts:
        close_part(args, log)
    if "taus" in args.parts:
        taus_part(args, log)
    if "taus_time" in args.parts:
        taus_time_part(args, log)
    if "gun" in args.parts:  # the main part's table alone, on --events gun events of --seed (no scans)
        result = evaluate(args.events, args.seed, args.methods, args.models_dir, log=log)
        name = f"calo_gun_seed{args.seed}{args.tag}"
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))
        (args.out / f"{name}.md").write_text(table(result) + "\n")
        log(table(result))
    if "main" not in args.parts:
        return 0
    t0 = time.perf_counter()
    result = evaluate(args.events, args.seed, DEFAULT_METHODS, args.models_dir, log=log)
    clusterers = ("clue", "gravnet", "edgeconv")
    dist = efficiency_vs_distance(clusterers, distances=(10, 20, 40, 80) if args.quick else (10, 20, 30, 50, 80, 120),
                                  n_per=8 if args.quick else 20, seed=args.seed, models_dir=args.models_dir)
    sizes = (20, 100) if args.quick else (20, 100, 300, 700, 1200)
    timing = timing_vs_hits(clusterers, sizes, seed=args.seed, models_dir=args.models_dir, log=log)
    result["efficiency_vs_distance"] = dist.to_dict("records")
    result["timing_vs_hits"] = timing.to_dict("records")
    result["machine"] = f"{platform.machine()}, 1 torch thread, torch {torch.__version__} (shared 2-core machine)"
    result["benchmark_seconds"] = time.perf_counter() - t0
    (args.out / "calo.json").write_text(json.dumps(result, indent=1))
    md = table(result) + "\n\nEfficiency against the distance of two 20 GeV photons at the face:\n\n" + \
        markdown(dist.pivot(index="distance_mm", columns="method", values="efficiency")) + \
        "\n\nWall seconds per event against hits (pile-up-like events):\n\n" + \
        markdown(timing.pivot_table(index=["particles", "hits"], columns="method", values="seconds")) + \
        "\n\nCPU seconds per event against hits:\n\n" + \
        markdown(timing.pivot_table(index=["particles", "hits"], columns="method", values="cpu_seconds"))
    (args.out / "calo.md").write_text(md + "\n")
    plots.resolution_vs_energy(result, args.out / "calo_resolution_vs_energy.png")
    plots.efficiency_vs_distance(dist, args.out / "calo_efficiency_vs_distance.png")
    plots.time_vs_hits(timing, args.out / "calo_time_vs_hits.png")
    event = next(iter(gun_events(1, seed=args.seed)))
    for name in clusterers:
        hit_table, _ = get_method(name, args.models_dir).reconstruct(event)
        plots.event_display(event, hit_table, args.out / f"calo_event_{name}.png", f"seed {args.seed}: {name}")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

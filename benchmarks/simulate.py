"""Fast simulation: seconds and peak memory per event on one core, and the comparison with real events.

    python benchmarks/simulate.py [--events 1001 1003] [--no-ttbar] [--secondaries] [--efficiency-scan]

Each case runs in its own process (one thread), so that the peak resident memory (ru_maxrss) is that
event's alone, detector included. Cases: the real particle lists of TrackML events (simulated and compared
with the same events' real hits; a per-layer plot each, and the agreement of ``nhits`` by kind of particle
and pT beside that of two simulations with different seeds), and, when ``deepreco.generate`` and Pythia 8 are
installed, a ttbar event with mu = 200 pile-up (generation and simulation timed apart). Results go to
``benchmarks/results/simulate.txt`` and ``benchmarks/results/simulate_hits_per_layer_<event>.png``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SHARED_TRAIN = HERE.parent.parent / "shared" / "data" / "trackml" / "train"


def _event_files(event: int) -> tuple[Path, Path]:
    name = f"event{event:09d}"
    shipped = resources.files("deepreco") / "data"
    for folder in (Path(str(shipped)), SHARED_TRAIN):
        hits, particles = folder / f"{name}-hits.csv.gz", folder / f"{name}-particles.csv.gz"
        if hits.is_file() and particles.is_file():
            return hits, particles
    raise FileNotFoundError(f"no real files for event {event} in the package or {SHARED_TRAIN}")


def _real_case(event: int, queue) -> None:
    from deepreco.io import read_table
    from deepreco.simulate import (
        comparison_table,
        default_detector,
        nhits_by_class,
        plot_hits_per_layer,
        simulate_event,
        summary_numbers,
    )

    hits_path, particles_path = _event_files(event)
    hits, particles = read_table(hits_path, "hits"), read_table(particles_path, "particles")
    default_detector()  # read once, as a long run would; timed apart
    t0 = time.perf_counter()
    sim = simulate_event(particles, seed=event, event_id=event)
    seconds = time.perf_counter() - t0
    table = comparison_table(hits, particles, sim)
    png = plot_hits_per_layer(hits, sim, RESULTS / f"simulate_hits_per_layer_{event}.png",
                              title=f"event {event}: hits per layer, real against simulated")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    numbers = summary_numbers(hits, particles, sim)
    by_class = nhits_by_class(particles, sim, simulate_event(particles, seed=event + 1, event_id=event))
    # the pT threshold at work: central primaries just above 0.15 GeV, mean hits real and simulated
    pt = np.hypot(particles["px"], particles["py"]).to_numpy()
    central = (np.hypot(particles["vx"], particles["vy"]).to_numpy() < 1.0) \
        & (np.abs(np.arcsinh(particles["pz"].to_numpy() / np.maximum(pt, 1e-9))) < 1.0)
    band = pd.cut(pt, [0.15, 0.155, 0.16, 0.17, 0.2], right=False)
    threshold = pd.DataFrame({"pT": band, "real": particles["nhits"].to_numpy(),
                              "simulated": sim.particles["nhits"].to_numpy()})[central].groupby(
        "pT", observed=True).agg(particles=("real", "size"), real=("real", "mean"), simulated=("simulated", "mean"))
    queue.put({"case": f"real particles of event {event}", "particles": len(particles), "hits": len(sim.hits),
               "by_class": by_class, "threshold": threshold.reset_index(), "seconds": seconds, "peak_mb": peak,
               "table": table, "plot": png.name,
               "particle_hits": (numbers["real_particle_hits"], numbers["sim_particle_hits"])})


def _within_at(arg, queue) -> None:
    from deepreco.io import read_table
    from deepreco.simulate import simulate_event, summary_numbers

    event, efficiency = arg
    hits_path, particles_path = _event_files(event)
    hits, particles = read_table(hits_path, "hits"), read_table(particles_path, "particles")
    sim = simulate_event(particles, seed=event, event_id=event, hit_efficiency=efficiency)
    queue.put(summary_numbers(hits, particles, sim)["within_one_hit"])


def _secondaries_at(arg, queue) -> None:
    from deepreco.io import read_table
    from deepreco.simulate import simulate_event
    from deepreco.simulate.lineage import made_by_material

    event, scale = arg
    particles = read_table(_event_files(event)[1], "particles")
    a, b = (simulate_event(particles, seed=s, event_id=event, noise_fraction=0.0, secondary_interaction_scale=scale)
            .particles["nhits"].to_numpy() for s in (event, event + 1))
    real = particles["nhits"].to_numpy()
    sel = made_by_material(particles["particle_id"].to_numpy()) \
        & (np.hypot(particles["px"], particles["py"]).to_numpy() >= 0.15)
    queue.put({"particles": int(sel.sum()), "within": float(np.mean(np.abs(a - real)[sel] <= 1)),
               "seeds": float(np.mean(np.abs(a - b)[sel] <= 1)), "difference": float(np.mean((a - real)[sel]))})


def _ttbar_case(mu: float, queue) -> None:
    try:
        from deepreco.generate import ttbar_with_pileup
        from deepreco.simulate import default_detector, simulate_event

        default_detector()
        t0 = time.perf_counter()
        particles = ttbar_with_pileup(mu=mu, seed=1)
        t_gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        sim = simulate_event(particles, seed=1, event_id=1)
        t_sim = time.perf_counter() - t0
    except Exception as exc:  # Pythia absent, or the generator not there yet: say so in the results
        queue.put({"case": f"ttbar mu={mu:g}", "skipped": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"})
        return
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    queue.put({"case": f"ttbar mu={mu:g}", "particles": len(particles), "hits": len(sim.hits),
               "seconds": t_sim, "generation_seconds": t_gen, "peak_mb": peak})


def _run(target, arg) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(arg, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1001, 1003])
    parser.add_argument("--no-ttbar", action="store_true")
    parser.add_argument("--mu", type=float, default=200.0)
    parser.add_argument("--secondaries", action="store_true",
                        help="also: material secondaries with random early ends (secondary_interaction_scale)")
    parser.add_argument("--efficiency-scan", action="store_true",
                        help="also: share within one hit against the hit efficiency (events 1001, 1003, 1005, 1009)")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = [_run(_real_case, e) for e in args.events]
    if not args.no_ttbar:
        results.append(_run(_ttbar_case, args.mu))
    lines = [f"deepreco fast simulation benchmark ({platform.processor() or platform.machine()}, one thread, "
             f"{time.strftime('%Y-%m-%d')})", ""]
    lines.append(f"{'case':34s} {'particles':>9s} {'hits':>8s} {'sim s':>7s} {'gen s':>7s} {'peak MB':>8s}")
    for r in results:
        if "skipped" in r:
            lines.append(f"{r['case']:34s} skipped: {r['skipped']}")
            continue
        gen = f"{r['generation_seconds']:7.1f}" if "generation_seconds" in r else f"{'-':>7s}"
        lines.append(f"{r['case']:34s} {r['particles']:9d} {r['hits']:8d} {r['seconds']:7.2f} {gen} "
                     f"{r['peak_mb']:8.0f}")
    for r in results:
        if "table" in r:
            lines += ["", f"{r['case']} (plot: {r['plot']})", r["table"].to_string(index=False, float_format="%.4f")]
            real_p, sim_p = r["particle_hits"]
            lines.append(f"hits made by particles: real (sum of the particles' nhits) {real_p}, simulated {sim_p} "
                         f"({sim_p / real_p - 1:+.1%})")
            c = r["by_class"]
            lines += ["per kind of particle: share within one hit of the real nhits, the same share between two "
                      "seeds of the simulation, mean simulated - real",
                      c.to_string(index=False, float_format="%.3f"),
                      f"all: within {(c.within * c.particles).sum() / c.particles.sum():.3f}, "
                      f"seeds {(c.seeds * c.particles).sum() / c.particles.sum():.3f}",
                      "primaries of |eta| < 1 just above the pT threshold (0.15 GeV): mean nhits",
                      r["threshold"].to_string(index=False, float_format="%.2f")]
    if args.secondaries:
        lines += ["", "material secondaries of pT >= 0.15 GeV given random early ends (nuclear interactions at "
                  "secondary_interaction_scale times the probability): share within one hit of the real nhits, "
                  "of a second simulation (another seed), mean simulated - real"]
        for event in args.events:
            for scale in (0.0, 2.0, 4.0):
                r = _run(_secondaries_at, (event, scale))
                lines.append(f"  event {event}, scale {scale:3.1f}: {r['particles']} particles, "
                             f"within {r['within']:.3f}, seeds {r['seeds']:.3f}, "
                             f"mean difference {r['difference']:+.2f}")
    if args.efficiency_scan:
        lines += ["", "share of particles within one hit of their real nhits against the hit efficiency "
                  "(events 1001, 1003, 1005, 1009, mean)"]
        for eff in (0.97, 0.98, 0.99, 0.995, 1.0):
            shares = [_run(_within_at, (e, eff)) for e in (1001, 1003, 1005, 1009)]
            each = ", ".join(f"{x:.4f}" for x in shares)
            lines.append(f"  hit efficiency {eff:5.3f}: {np.mean(shares):.4f} ({each})")
    text = "\n".join(lines) + "\n"
    (RESULTS / "simulate.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

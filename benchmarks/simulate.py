"""Fast simulation: seconds and peak memory per event on one core, and the comparison with real events.

    python benchmarks/simulate.py [--events 1001 1003] [--no-ttbar] [--secondaries] [--efficiency-scan]
    python benchmarks/simulate.py --generated 3     # only: generated events' secondaries against the real lists

Each case runs in its own process (one thread), so that the peak resident memory (ru_maxrss) is that
event's alone, detector included. Cases: the real particle lists of TrackML events (simulated and compared
with the same events' real hits; a per-layer plot each, and the agreement of ``nhits`` by kind of particle
and pT beside that of two simulations with different seeds), and, when ``deepreco.generate`` and Pythia 8 are
installed, a ttbar event with mu = 200 pile-up (generation and simulation timed apart). Results go to
``benchmarks/results/simulate.txt`` and ``benchmarks/results/simulate_hits_per_layer_<event>.png``.

``--generated N``: the material secondaries of N generated ttbar events of mu = 200 (Pythia 8, |eta| <= 4 as
the TrackML lists, simulated with ``secondaries=True``) against the real particle lists of development events
1000-1009: the share of particles by production radius, the radius histogram with a two-sample
Kolmogorov-Smirnov test, the secondaries' p, pT and eta (two-sample tests too), their number per event and per
primary, their hits (and the share with hits by momentum). Like with like: charged particles of pT >= 0.1 GeV on
both sides (the real lists' cut); the real events hold fewer primaries than the generated ones (about 8,800
against 10,600), so counts are also given per primary.
Results: ``benchmarks/results/simulate_secondaries.txt`` and ``simulate_secondaries.png``.
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


def _real_list(event: int) -> dict:
    from deepreco.io import read_table
    from deepreco.simulate.lineage import made_by_material

    p = read_table(SHARED_TRAIN / f"event{event:09d}-particles.csv.gz", "particles")  # 1000-1009 all have one
    return _summary(p, made_by_material(p["particle_id"].to_numpy()), p["nhits"].to_numpy())


def _summary(p: pd.DataFrame, secondary: np.ndarray, nhits: np.ndarray) -> dict:
    pt = np.hypot(p["px"], p["py"]).to_numpy()
    keep = (p["q"].to_numpy() != 0) & (pt >= 0.1)
    r = np.hypot(p["vx"], p["vy"]).to_numpy()[keep]
    sec, pt, nhits = secondary[keep], pt[keep], nhits[keep]
    eta = np.arcsinh(p["pz"].to_numpy()[keep] / pt)
    pmag = np.hypot(pt, p["pz"].to_numpy()[keep])
    return {"sec_p": pmag[sec], "n": int(keep.sum()), "primaries": int((~sec).sum()), "secondaries": int(sec.sum()),
            "displaced": float(np.mean(r > 1.0)), "r": r, "sec_pt": pt[sec], "sec_eta": eta[sec],
            "sec_nhits": nhits[sec], "sec_with_hits": int((nhits[sec] > 0).sum()), "sec_hits": int(nhits[sec].sum())}


def _with_hits(rows: list[dict], lo: float, hi: float) -> float:
    p = np.concatenate([x["sec_p"] for x in rows])
    nhits = np.concatenate([x["sec_nhits"] for x in rows])
    sel = (p >= lo) & (p < hi)
    return float(np.mean(nhits[sel] > 0))


def _generated_case(seed: int, queue) -> None:
    from deepreco.generate import ttbar_with_pileup
    from deepreco.simulate import default_detector, simulate_event

    default_detector()
    particles = ttbar_with_pileup(mu=200, seed=seed, eta_max=4.0)
    t0 = time.perf_counter()
    sim = simulate_event(particles, seed=seed, event_id=seed, secondaries=True)
    seconds = time.perf_counter() - t0
    out = _summary(sim.particles, sim.particles["parent_id"].to_numpy() > 0, sim.particles["nhits"].to_numpy())
    out["displaced_without"] = _summary(particles, np.zeros(len(particles), bool), np.zeros(len(particles)))[
        "displaced"]
    t0 = time.perf_counter()
    plain = simulate_event(particles, seed=seed, event_id=seed)
    out.update(seconds_without=time.perf_counter() - t0, hits_without=len(plain.hits))
    out.update(seconds=seconds, hits=len(sim.hits), peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    queue.put(out)


def generated_secondaries(n_generated: int) -> str:
    """The comparison of ``--generated``: text for the results file; writes the plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import ks_2samp

    real = [_real_list(e) for e in range(1000, 1010)]
    gen = [_run(_generated_case, s) for s in range(1, n_generated + 1)]

    def cat(rows, key):
        return np.concatenate([x[key] for x in rows])

    lines = [f"material secondaries: {n_generated} generated ttbar mu=200 events (|eta| <= 4, secondaries=True, "
             f"seeds 1-{n_generated}) against the real lists of events 1000-1009 "
             f"({time.strftime('%Y-%m-%d')}, one thread); charged particles of pT >= 0.1 GeV", ""]
    lines.append(f"{'':44s} {'real (1000-1009)':>18s} {'generated':>18s}")

    def row(name, fn, fmt="{:.3f}"):
        a, b = [fn(x) for x in real], [fn(x) for x in gen]
        lines.append(f"{name:44s} {fmt.format(np.mean(a)):>10s} +- {np.std(a):5.3f} "
                     f"{fmt.format(np.mean(b)):>10s} +- {np.std(b):5.3f}")

    row("displaced share (production r > 1 mm)", lambda x: x["displaced"])
    lines.append(f"{'  generated without secondaries':44s} {'':>18s} "
                 f"{np.mean([x['displaced_without'] for x in gen]):10.3f}")
    row("primaries per event", lambda x: x["primaries"], "{:.0f}")
    row("secondaries per event", lambda x: x["secondaries"], "{:.0f}")
    row("secondaries per primary", lambda x: x["secondaries"] / x["primaries"])
    row("share of secondaries with hits", lambda x: x["sec_with_hits"] / x["secondaries"])
    row("hits of secondaries per primary", lambda x: x["sec_hits"] / x["primaries"])
    bins = [1, 10, 25, 30, 40, 60, 80, 100, 150, 180, 210, 260, 300, 400, 500, 700, 1100]
    r_real, r_gen = cat(real, "r"), cat(gen, "r")
    h_real = np.histogram(r_real, bins)[0] / r_real.size
    h_gen = np.histogram(r_gen, bins)[0] / r_gen.size
    lines += ["", "share of all particles by production radius (mm)",
              f"{'r':>12s} {'real':>7s} {'generated':>9s}"]
    lines.append(f"{'< 1':>12s} {np.mean(r_real < 1):7.3f} {np.mean(r_gen < 1):9.3f}")
    for lo, hi, a, b in zip(bins[:-1], bins[1:], h_real, h_gen, strict=True):
        lines.append(f"{f'{lo}-{hi}':>12s} {a:7.3f} {b:9.3f}")
    d_real, d_gen = r_real[r_real > 1], r_gen[r_gen > 1]
    ks = ks_2samp(d_real, d_gen)
    lines.append(f"two-sample Kolmogorov-Smirnov test of the production radius of the displaced particles: "
                 f"D = {ks.statistic:.3f}, p = {ks.pvalue:.2g} ({d_real.size} real, {d_gen.size} generated)")
    for key, name in (("sec_p", "p (GeV)"), ("sec_pt", "pT (GeV)"), ("sec_eta", "eta"), ("sec_nhits", "nhits")):
        a, b = cat(real, key), cat(gen, key)
        qa, qb = np.quantile(a, [0.1, 0.5, 0.9]), np.quantile(b, [0.1, 0.5, 0.9])
        test = ks_2samp(a, b)
        lines.append(f"secondaries' {name}: 10/50/90 % real {qa[0]:.2f} {qa[1]:.2f} {qa[2]:.2f}, "
                     f"generated {qb[0]:.2f} {qb[1]:.2f} {qb[2]:.2f}; two-sample KS D = {test.statistic:.3f}, "
                     f"p = {test.pvalue:.2g} ({a.size} real, {b.size} generated)")
    # what the soft products' hits depend on: the share with hits by momentum, real against generated
    lines.append("share of secondaries with hits by p (GeV), real / generated: " + ", ".join(
        f"{lo:g}-{hi:g} {_with_hits(real, lo, hi):.2f} / {_with_hits(gen, lo, hi):.2f}"
        for lo, hi in ((0.1, 0.2), (0.2, 0.3), (0.3, 0.5), (0.5, 1.0), (1.0, 1e3))))
    lines.append(f"simulation with secondaries: {np.mean([x['seconds'] for x in gen]):.1f} s an event "
                 f"({np.mean([x['hits'] for x in gen]):.0f} hits), without: "
                 f"{np.mean([x['seconds_without'] for x in gen]):.1f} s "
                 f"({np.mean([x['hits_without'] for x in gen]):.0f} hits); one thread; "
                 f"peak {max(x['peak_mb'] for x in gen):.0f} MB")

    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    edges = np.linspace(1, 1100, 111)
    for data, label in ((d_real, "real lists 1000-1009"), (d_gen, "generated, secondaries=True")):
        ax[0, 0].hist(data, edges, histtype="step", density=True, label=label)
    ax[0, 0].set(xlabel="production radius of displaced particles (mm)", ylabel="density", yscale="log")
    ax[0, 0].legend()
    for (i, j), key, xlabel, rng in (((0, 1), "sec_pt", "secondaries' pT (GeV)", (0.1, 1.5)),
                                     ((1, 0), "sec_eta", "secondaries' eta", (-4.5, 4.5)),
                                     ((1, 1), "sec_nhits", "secondaries' nhits", (-0.5, 20.5))):
        e = np.arange(-0.5, 21.5) if key == "sec_nhits" else np.linspace(*rng, 51)
        for rows, label in ((real, "real"), (gen, "generated")):
            ax[i, j].hist(cat(rows, key), e, histtype="step", density=True, label=label)
        ax[i, j].set(xlabel=xlabel, ylabel="density")
        ax[i, j].legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "simulate_secondaries.png", dpi=90)
    plt.close(fig)
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--generated", type=int, default=0, metavar="N",
                        help="only: material secondaries of N generated events against the real lists 1000-1009")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.generated:
        text = generated_secondaries(args.generated)
        (RESULTS / "simulate_secondaries.txt").write_text(text)
        print(text)
        return
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

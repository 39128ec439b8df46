"""Time Pythia 8 ttbar + pile-up generation on one core and compare its particles with real TrackML events.

For ``--events`` ttbar events with Poisson(``--mu``) minimum-bias pile-up (deepreco.generate defaults: pT >=
0.05 GeV, |eta| <= 4.5, no neutrinos), it prints the one-off initialisation time, seconds per event, peak
memory (getrusage's maximum resident set size), and particle counts: all kept, and charged with pT > 0.1 GeV
and |eta| < 4 (the selection of the TrackML particle files). The same numbers describe the shape of the pT and
eta distributions of the real TrackML particle lists in ``../shared/data/trackml/train/`` (or the one shipped
in the package), which were made from the same physics (ttbar, mu = 200, 14 TeV) through Geant4.

    python benchmarks/generate.py [--events 5] [--mu 200] [--seed 1] [--out benchmarks/results/generate.txt]
"""

from __future__ import annotations

import os

# One core: pin BLAS pools before numpy loads, and the process itself below.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from importlib import resources  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from deepreco.generate import trackml_particles, ttbar_with_pileup  # noqa: E402
from deepreco.generate.table import pt_eta  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "trackml" / "train"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def describe(table: pd.DataFrame) -> dict:
    """Counts and the shape of the pT and eta spectra of charged particles with pT > 0.1 GeV, |eta| < 4."""
    pt, eta = pt_eta(table["px"], table["py"], table["pz"])
    sel = (table["q"].to_numpy() != 0) & (pt > 0.1) & (np.abs(eta) < 4)
    pt, eta = pt[sel], np.abs(eta[sel])
    r = np.hypot(table["vx"].to_numpy(), table["vy"].to_numpy())[sel]
    q10, q50, q90 = np.quantile(pt, [0.1, 0.5, 0.9])
    return {
        "all": len(table), "charged": int(sel.sum()), "primary": int((r < 1).sum()),
        "pt_q10": q10, "pt_median": q50, "pt_q90": q90, "pt_gt_1": (pt > 1).mean(), "pt_gt_10": (pt > 10).mean(),
        "eta_lt_1": (eta < 1).mean(), "eta_lt_2.5": (eta < 2.5).mean(), "eta_3_to_4": (eta > 3).mean(),
        "positive": (table["q"].to_numpy()[sel] > 0).mean(), "vertex_r_gt_1mm": (r > 1).mean(),
    }


def real_tables() -> list[tuple[str, pd.DataFrame]]:
    files = sorted(SHARED.glob("event*-particles.csv.gz")) if SHARED.is_dir() else []
    if not files:
        files = [Path(str(resources.files("deepreco") / "data" / "event000001001-particles.csv.gz"))]
    return [(f.name.split("-")[0], trackml_particles(f)) for f in files]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--mu", type=float, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "generate.txt")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    lines = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    say(f"deepreco.generate: Pythia 8 ttbar + Poisson(mu = {args.mu:g}) pile-up, 14 TeV, one core")
    say(f"machine: {platform.processor() or platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}")
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    ttbar_with_pileup(mu=50, seed=rng)  # initialises both Pythia instances (hard process and minimum bias)
    init_s = time.perf_counter() - start
    say(f"initialisation (once per process, two Pythia instances): {init_s:.2f} s, peak memory {peak_mb():.0f} MB")

    times, stats = [], []
    for _ in range(args.events):
        start = time.perf_counter()
        table = ttbar_with_pileup(mu=args.mu, seed=rng)
        times.append(time.perf_counter() - start)
        stats.append(describe(table))
    times = np.array(times)
    say(f"per event ({args.events} events): mean {times.mean():.3f} s, min {times.min():.3f} s, "
        f"max {times.max():.3f} s; peak memory {peak_mb():.0f} MB; "
        f"table {table.memory_usage(index=False).sum() / 2**20:.1f} MB in memory")
    say()

    real = [(name, describe(t)) for name, t in real_tables()]
    generated = pd.DataFrame(stats)
    observed = pd.DataFrame([s for _, s in real])
    say(f"particles per event: generated (mean of {len(generated)}) vs real TrackML (mean of {len(observed)} "
        f"events: {real[0][0]} .. {real[-1][0]})")
    say("  'charged' = q != 0, pT > 0.1 GeV, |eta| < 4; the pT and eta numbers below are over those")
    say(f"{'':24s}{'generated':>12s}{'real':>12s}{'real min':>12s}{'real max':>12s}")
    fmt = {"all": "{:12,.0f}", "charged": "{:12,.0f}", "primary": "{:12,.0f}", "pt_q10": "{:12.3f}",
           "pt_median": "{:12.3f}", "pt_q90": "{:12.3f}"}
    labels = {"all": "all kept", "charged": "charged", "primary": "charged, vertex r < 1mm",
              "pt_q10": "pT 10 % quantile", "pt_median": "pT median",
              "pt_q90": "pT 90 % quantile", "pt_gt_1": "fraction pT > 1", "pt_gt_10": "fraction pT > 10",
              "eta_lt_1": "fraction |eta| < 1", "eta_lt_2.5": "fraction |eta| < 2.5",
              "eta_3_to_4": "fraction |eta| > 3", "positive": "fraction q > 0",
              "vertex_r_gt_1mm": "fraction vertex r > 1mm"}
    for key, label in labels.items():
        f = fmt.get(key, "{:12.4f}")
        gen = generated[key].mean()
        if key == "all":
            say(f"{label:24s}{f.format(gen)}{'':>12s}{'':>12s}{'':>12s}   (real files hold charged only)")
            continue
        say(f"{label:24s}{f.format(gen)}{f.format(observed[key].mean())}{f.format(observed[key].min())}"
            f"{f.format(observed[key].max())}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

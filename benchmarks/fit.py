"""Track parameters of each method's tracks: the two Kalman fitters (ACTS's, deepreco's) on simulated real-list events.

    python benchmarks/fit.py [--lists 1001] [--methods truth ckf] [--fitters acts deepreco] [--threads 1]
                             [--data DIR] [--name fit]

Each TrackML development particle list (1000-1009 only) is simulated once by deepreco (seed 1) into ``--data``;
each method's tracks are fitted by each fitter (`deepreco.fit.fit_tracks`) on ``--threads`` threads (BLAS,
OpenMP) and compared with the truth (`deepreco.metrics.fit`): the failed-fit fraction, the median chi2/ndf, the
pull widths (half the 16-84 % interval) and the resolutions against pT and |eta|; the fit's wall clock and CPU
time. Results: ``benchmarks/results/<name>.txt``, ``.json`` and ``.png`` (resolutions against pT, the pT pulls).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

from real_lists import check_development, real_list_event

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, nargs="+", default=[1001])
    parser.add_argument("--methods", nargs="+", default=["truth", "ckf"])
    parser.add_argument("--fitters", nargs="+", default=["acts", "deepreco"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default="/tmp/deepreco-bench/fit-reallists")
    parser.add_argument("--name", default="fit")
    args = parser.parse_args()
    check_development(args.lists)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    from deepreco.fit import fit_tracks
    from deepreco.io import read_event
    from deepreco.metrics.fit import fit_summary, match_fits
    from deepreco.reconstruct import get_method

    rows, pulls = [], {}
    for number in args.lists:
        event = read_event(real_list_event(number, Path(args.data) / str(number), seed=1))
        for method in args.methods:
            tracks = get_method(method).reconstruct(event)
            if method == "truth":  # the noise "track" is no track
                noise = event.truth.loc[event.truth["particle_id"] == 0, "hit_id"]
                tracks = tracks[~tracks["hit_id"].isin(noise)]
            for fitter in args.fitters:
                fit_tracks(event, tracks.head(50), fitter=fitter)  # geometry and caches built outside the clock
                start, cpu = time.perf_counter(), time.process_time()
                fits = fit_tracks(event, tracks, fitter=fitter)
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
                matched = match_fits(fits, tracks, event.truth, event.particles)
                summary = fit_summary(fits, matched)
                pulls.setdefault(f"{method} {fitter}", []).append(matched["pull_pt"].to_numpy())
                rows.append({"list": number, "method": method, "fitter": fitter, "n_hits": event.n_hits,
                             "fit_seconds": seconds, "fit_cpu_seconds": cpu, **summary})
                print(f"list {number} {method} {fitter}: {summary['n_tracks']} tracks, failed "
                      f"{summary['failed_fraction']:.3f}, {seconds:.1f} s", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(
        {"rows": rows, "peak_memory_mb": peak, "threads": args.threads,
         "machine": platform.processor() or platform.machine()}, indent=1))
    lines = [f"Kalman fits (acts: pyacts 48.1.0's KalmanFitter; deepreco: its own) of each method's tracks, "
             f"deepreco-simulated real-list events, {args.threads} thread(s) (machine shared with other jobs: "
             "s is the wall clock, cpu the process's CPU time)", ""]
    lines.append(f"{'list':>5} {'method':>6} {'fitter':>8} {'tracks':>7} {'failed':>7} {'chi2/ndf':>8} {'s':>6} "
                 f"{'cpu':>6}  pull widths d0 z0 phi theta qop pT")
    for r in rows:
        widths = " ".join(f"{r[f'pull_width_{k}']:.2f}" for k in ("d0", "z0", "phi", "theta", "qop", "pt"))
        lines.append(f"{r['list']:>5} {r['method']:>6} {r['fitter']:>8} {r['n_tracks']:>7} "
                     f"{r['failed_fraction']:>7.3f} {r['median_chi2_ndf']:>8.2f} {r['fit_seconds']:>6.1f} "
                     f"{r['fit_cpu_seconds']:>6.1f}  {widths}")
    lines += ["", "resolution (half the 16-84 % interval) of the matched fitted tracks"]
    for r in rows:
        lines.append(f"list {r['list']} {r['method']} {r['fitter']}:  bin      n   pT/pT   d0[mm]  z0[mm]  phi"
                     "     theta")
        for b in r["resolution"]:
            lines.append(f"  {b['variable']:>4} {b['lo']:>4}-{b['hi']:<5} {b['n']:>5} {b['res_pt']:7.4f} "
                         f"{b['res_d0']:7.4f} {b['res_z0']:7.4f} {b['res_phi']:7.5f} {b['res_theta']:7.5f}")
    lines.append(f"peak memory {peak:.0f} MB; load average (1, 5, 15 min) at the end "
                 + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores")
    (RESULTS / f"{args.name}.txt").write_text("\n".join(lines) + "\n")
    _plot(rows, pulls, RESULTS / f"{args.name}.png")
    print("\n".join(lines))


def _plot(rows, pulls, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for r in rows:
        bins = [b for b in r["resolution"] if b["variable"] == "pt" and b["n"] > 0]
        x = [0.5 * (b["lo"] + min(b["hi"], 10.0)) for b in bins]
        label = f"{r['method']} {r['fitter']} (list {r['list']})"
        axes[0].plot(x, [b["res_pt"] for b in bins], "o-", label=label)
        axes[1].plot(x, [b["res_d0"] for b in bins], "o-", label=label)
    for method, parts in pulls.items():
        values = np.concatenate(parts)
        axes[2].hist(values[np.isfinite(values)], bins=np.linspace(-5, 5, 51), histtype="step", density=True,
                     label=method)
    grid = np.linspace(-5, 5, 201)
    axes[2].plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), "k:", label="unit Gaussian")
    axes[0].set(xlabel="true pT [GeV]", ylabel="pT resolution (relative)", xscale="log")
    axes[1].set(xlabel="true pT [GeV]", ylabel="d0 resolution [mm]", xscale="log", yscale="log")
    axes[2].set(xlabel="pT pull", ylabel="density")
    for ax in axes:
        ax.legend(fontsize=7)
    for ax in axes[:2]:  # the log axis's minor labels overlap
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()

"""Track parameters of each method's tracks: ACTS's Kalman fit on simulated real-list events, one thread.

    python benchmarks/fit.py [--lists 1001] [--methods truth ckf] [--data DIR]

Each TrackML development particle list (1000-1009 only) is simulated once by deepreco (seed 1) into ``--data``;
each method's tracks are fitted (`deepreco.acts.fit.fit_tracks`) and compared with the truth
(`deepreco.metrics.fit`): the failed-fit fraction, the median chi2/ndf, the pull widths (half the 16-84 %
interval) and the resolutions against pT and |eta|. Results: ``benchmarks/results/fit.txt``, ``.json`` and
``fit.png`` (resolutions against pT, the pT pulls).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
LISTS = Path("/work/shared/data/trackml/train")


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from deepreco.acts.fit import fit_tracks
    from deepreco.io import read_event
    from deepreco.metrics.fit import fit_summary, match_fits
    from deepreco.reconstruct import get_method
    from deepreco.simulate.dataset import simulate_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, nargs="+", default=[1001])
    parser.add_argument("--methods", nargs="+", default=["truth", "ckf"])
    parser.add_argument("--data", default="/tmp/deepreco-bench/fit-reallists")
    args = parser.parse_args()
    if any(not 1000 <= n <= 1009 for n in args.lists):
        raise SystemExit("only the development lists 1000-1009")
    rows, pulls = [], {}
    for number in args.lists:
        out = Path(args.data) / str(number)
        if not any(out.glob("*-hits.parquet")):
            simulate_dataset("trackml", 1, out, seed=1, format="parquet", first_event_id=number,
                             particles=str(LISTS / f"event00000{number}-particles.csv.gz"))
        event = read_event(next(out.glob("*-hits.parquet")))
        for method in args.methods:
            tracks = get_method(method).reconstruct(event)
            if method == "truth":  # the noise "track" is no track
                noise = event.truth.loc[event.truth["particle_id"] == 0, "hit_id"]
                tracks = tracks[~tracks["hit_id"].isin(noise)]
            start = time.perf_counter()
            fits = fit_tracks(event, tracks)
            seconds = time.perf_counter() - start
            matched = match_fits(fits, tracks, event.truth, event.particles)
            summary = fit_summary(fits, matched)
            pulls.setdefault(method, []).append(matched["pull_pt"].to_numpy())
            rows.append({"list": number, "method": method, "n_hits": event.n_hits, "fit_seconds": seconds, **summary})
            print(f"list {number} {method}: {summary['n_tracks']} tracks, failed {summary['failed_fraction']:.3f}, "
                  f"{seconds:.1f} s", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fit.json").write_text(json.dumps({"rows": rows, "peak_memory_mb": peak,
                                                  "machine": platform.processor() or platform.machine()}, indent=1))
    lines = ["ACTS Kalman fit (pyacts 48.1.0) of each method's tracks, deepreco-simulated real-list events, "
             "one thread (machine shared with other jobs)", ""]
    lines.append(f"{'list':>5} {'method':>6} {'tracks':>7} {'failed':>7} {'chi2/ndf':>8} {'s':>6}  pull widths "
                 "d0 z0 phi theta qop pT")
    for r in rows:
        widths = " ".join(f"{r[f'pull_width_{k}']:.2f}" for k in ("d0", "z0", "phi", "theta", "qop", "pt"))
        lines.append(f"{r['list']:>5} {r['method']:>6} {r['n_tracks']:>7} {r['failed_fraction']:>7.3f} "
                     f"{r['median_chi2_ndf']:>8.2f} {r['fit_seconds']:>6.1f}  {widths}")
    lines += ["", "resolution (half the 16-84 % interval) of the matched fitted tracks"]
    for r in rows:
        lines.append(f"list {r['list']} {r['method']}:  bin      n   pT/pT   d0[mm]  z0[mm]  phi     theta")
        for b in r["resolution"]:
            lines.append(f"  {b['variable']:>4} {b['lo']:>4}-{b['hi']:<5} {b['n']:>5} {b['res_pt']:7.4f} "
                         f"{b['res_d0']:7.4f} {b['res_z0']:7.4f} {b['res_phi']:7.5f} {b['res_theta']:7.5f}")
    lines.append(f"peak memory {peak:.0f} MB")
    (RESULTS / "fit.txt").write_text("\n".join(lines) + "\n")
    _plot(rows, pulls, RESULTS / "fit.png")
    print("\n".join(lines))


def _plot(rows, pulls, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for r in rows:
        bins = [b for b in r["resolution"] if b["variable"] == "pt" and b["n"] > 0]
        x = [0.5 * (b["lo"] + min(b["hi"], 10.0)) for b in bins]
        label = f"{r['method']} (list {r['list']})"
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
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()

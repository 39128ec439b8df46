"""Reading real TrackML events and checking them against the detector: times and figures for the README.

    python benchmarks/io_detector.py > benchmarks/results/io_detector.txt

Uses the shipped real event 1001 (93,680 hits). Times are the best of 5 (time.perf_counter).
"""

import os
import platform
import tempfile
import time
from importlib import resources

import numpy as np

from deepreco.detector import Detector
from deepreco.io import read_event, write_event


def best_of(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs; python {platform.python_version()}")
    data = resources.files("deepreco") / "data"
    with resources.as_file(data / "event000001001-hits.csv.gz") as hits_path:
        t, event = best_of(lambda: read_event(hits_path))
        print(f"read event 1001 (hits + particles, .csv.gz): {t * 1e3:.0f} ms, {event.n_hits:,} hits")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("csv", "csv.gz", "parquet"):
            tw, paths = best_of(lambda fmt=fmt: write_event(event, tmp, format=fmt))
            tr, _ = best_of(lambda fmt=fmt: read_event(f"{tmp}/event000001001-hits.{fmt}"))
            size = sum(p.stat().st_size for p in paths) / 1e6
            print(f"  {fmt:8s} write {tw * 1e3:6.0f} ms, read {tr * 1e3:6.0f} ms, {size:5.1f} MB")
            for p in paths:
                p.unlink()

    t, det = best_of(Detector.load)
    print(f"load the TrackML detector: {t * 1e3:.0f} ms, {len(det):,} modules, {len(det.layers)} layers")
    hits = event.hits
    index = det.module_index(hits["volume_id"], hits["layer_id"], hits["module_id"])
    xyz = hits[["x", "y", "z"]].to_numpy(np.float64)
    local = det.to_local(xyz, index)
    w_ratio = np.abs(local[:, 2]) / (det.thickness[index] / 2)
    print(f"real hits on their named module: max |w| = {np.abs(local[:, 2]).max():.4f} mm, "
          f"max |w| / (t/2) = {w_ratio.max():.3f}")
    print(f"  inside the module bounds (no tolerance): {det.inside(local, index).mean():.5%}; "
          f"within 0.5 mm: {det.inside(local, index, tolerance=0.5).mean():.5%}")
    det.find_module(xyz[:10])  # build the search trees once
    t, found = best_of(lambda: det.find_module(xyz))
    agree = (found == index).mean()
    print(f"find_module on {len(xyz):,} hits: {t * 1e3:.0f} ms, agrees with module_id for {agree:.5%}")


if __name__ == "__main__":
    main()

"""DBSCAN of unrolled hits, compiled (`dbscan.cylinder_dbscan`) against scikit-learn's, on one event.

    python benchmarks/dbscan_speed.py [--data DIR]

The event: list 1001 simulated with seed 1 (as `benchmarks/lstm_seeds.py` makes it). Five arc hypotheses (curvature
k [1/mm], z0 [mm]) as the grid seeding uses them (eps 0.008, z_scale 0.2, min_samples 3, all hits); each clustering is
timed three times on one thread, the best kept, and the two label sets compared. Output:
``benchmarks/results/dbscan_speed.txt``.
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from lstm_seeds import write_result  # noqa: E402


def main() -> None:
    import numpy as np
    from sklearn.cluster import DBSCAN

    from deepreco.io import Dataset
    from deepreco.reconstruct.dbscan import cylinder_dbscan, unrolled_coordinates, unrolled_features

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/deepreco-bench/fit-reallists/1001")
    args = parser.parse_args()
    event = next(iter(Dataset(args.data)))
    x, y, z = (event.hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    cylinder_dbscan(*unrolled_coordinates(x, y, z, 0.0, 0.2, 0.0), 0.008, 3)  # compiled (or loaded) before timing
    lines = [f"{args.data}: {len(x)} hits; one thread; best of 3", "",
             "k [1/mm] | z0 [mm] | clusters | s scikit-learn | s compiled | same labels"]
    for k, z0 in [(0.0, 0.0), (3e-4, 5.0), (-6e-4, -10.0), (1.2e-3, 2.5), (-2.4e-3, 0.0)]:
        times = {}
        for name, run in (("sklearn", lambda k=k, z0=z0: DBSCAN(eps=0.008, min_samples=3).fit_predict(
                unrolled_features(x, y, z, k, 0.2, z0))),
                          ("compiled", lambda k=k, z0=z0: cylinder_dbscan(*unrolled_coordinates(x, y, z, k, 0.2, z0),
                                                                          0.008, 3))):
            best = np.inf
            for _ in range(3):
                start = time.perf_counter()
                labels = run()
                best = min(best, time.perf_counter() - start)
            times[name] = (best, labels)
        same = np.array_equal(times["sklearn"][1], times["compiled"][1])
        lines.append(f"{k:g} | {z0:g} | {times['sklearn'][1].max() + 1} | {times['sklearn'][0]:.3f} | "
                     f"{times['compiled'][0]:.4f} | {same}")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    write_result("dbscan_speed.txt", text)
    print(text)


if __name__ == "__main__":
    main()

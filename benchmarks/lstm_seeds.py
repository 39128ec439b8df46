"""Seed 004's pipeline taken apart: DBSCAN seed quality, and the LSTM extension given true seeds.

    python benchmarks/lstm_seeds.py [--data DIR] [--events 3]

Runs on the events `benchmarks/tracking.py` simulated (ttbar + mu = 200, seed 1000). A seed is perfect when
its 5 hits all come from one particle (seed 004 reports 85.8 %). "true seeds" feeds the LSTM the first 5
hits of every particle instead of DBSCAN's, which separates the seeding from the extension, as the seed's
slides do; the last line uses the seed's assignment (nearest hit to each predicted point) instead of ours
(the predicted path crossed with each layer). One thread. Output: ``benchmarks/results/lstm_seeds.txt``.
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    import numpy as np
    import torch

    from deepreco.io import Dataset
    from deepreco.reconstruct import evaluate_method, get_method

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/deepreco-bench/ttbar-mu200-seed1000-n3")
    parser.add_argument("--events", type=int, default=3)
    args = parser.parse_args()
    data = Dataset(args.data)
    lines = [f"events: {min(args.events, len(data))} of {args.data}", ""]
    method = get_method("lstm")
    quality = [method.seed_quality(event) for _, event in zip(range(args.events), data, strict=False)]
    lines.append("DBSCAN seeds: " + ", ".join(f"{q['n_seeds']} seeds, {q['perfect']:.3f} perfect, covering "
                                              f"{q['particles']} particles" for q in quality))
    lines.append(f"perfect seeds, mean over events: {np.mean([q['perfect'] for q in quality]):.3f} "
                 "(seed 004: 0.858)")
    lines.append("")
    for label, params in [("lstm, DBSCAN seeds", {}), ("lstm, true seeds", {"seeding": "truth"}),
                          ("lstm, true seeds, nearest hit to each predicted point (the seed's fit)",
                           {"seeding": "truth", "fit": "point"})]:
        r = evaluate_method(Dataset(args.data), "lstm", n_events=args.events, **params)
        lines.append(f"{label}:\n    score {r['score']:.4f}  efficiency {r['efficiency']:.4f}  fakes "
                     f"{r['fake_rate']:.4f}  duplicates {r['duplicate_rate']:.4f}  "
                     f"{r['seconds_per_event']:.2f} s/event")
    text = "\n".join(lines) + "\n"
    out = Path(__file__).resolve().parent / "results" / "lstm_seeds.txt"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

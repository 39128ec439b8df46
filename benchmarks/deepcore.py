"""DeepCore against the classical jet-core seeding on the same simulated TeV dijet events, one thread.

    python benchmarks/deepcore.py [--events 100] [--seed 0] [--model PATH]

Events: Pythia 8 QCD dijets, pT-hat 1.8 to 2.4 TeV, seeds ``--seed`` onwards (the shipped model was trained on
seeds 1,000,000 onwards). Jets: anti-kt 0.4, smeared, pT > 1 TeV, |eta| < 1.4. Writes
``benchmarks/results/deepcore.json`` and ``.txt``, and the plots ``deepcore_efficiency.png`` (efficiency
against the distance to the jet axis and jet pT), ``deepcore_eta.png`` (eta residual and correlation) and
``deepcore_display.png`` (one direction's four windows, predicted and true crossing points).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    import numpy as np
    import torch

    from deepreco.deepcore.evaluate import HEADER, SHIPPED_MODEL, evaluate, format_row
    from deepreco.deepcore.events import make_event
    from deepreco.deepcore.plots import plot_display, plot_efficiency, plot_eta
    from deepreco.deepcore.train import load_model
    from deepreco.deepcore.windows import build_windows, dense_targets

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    args = parser.parse_args()
    torch.set_num_threads(1)

    result = evaluate(args.events, args.seed, args.model, keep=True)
    records = result.pop("records")
    result["machine"] = f"{platform.platform()}, {os.cpu_count()} CPUs shared with other users, one thread"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "deepcore.json").write_text(json.dumps(result, indent=1))
    plot_efficiency(records["tracks"], RESULTS / "deepcore_efficiency.png")
    plot_eta(records["seeds"]["deepcore"], records["tracks"], RESULTS / "deepcore_eta.png")

    # event display: the direction of the first event with the most true crossing points
    model, _ = load_model(args.model)
    windows = build_windows(make_event(args.seed))
    flags, _, _ = dense_targets(len(windows.inputs), windows.t_index, windows.t_kind, windows.t_params)
    prob, _ = model.predict(torch.from_numpy(windows.inputs), torch.from_numpy(windows.jet))
    sample = int(np.argmax(flags.sum(axis=(1, 2, 3))))
    plot_display(windows, prob.numpy(), flags, sample, RESULTS / "deepcore_display.png")

    info = result["model"]
    lines = [f"machine: {result['machine']}",
             f"events: {result['events']} Pythia dijets (pT-hat 1.8-2.4 TeV, seeds {args.seed}..), "
             f"{result['jets']} jets (pT > 1 TeV, |eta| < 1.4), {result['tracks']} simulated tracks "
             "(pT > 1 GeV, DeltaR < 0.1, crossing layer 2)",
             f"model: trained on {info.get('windows')} windows from {info.get('events')} events, "
             f"{info.get('epochs')} epochs, {info.get('train_seconds')} s",
             "", HEADER]
    lines += [format_row(name, result[name]) for name in ("deepcore", "baseline", "baseline_kmeans")]
    text = "\n".join(lines) + "\n"
    (RESULTS / "deepcore.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

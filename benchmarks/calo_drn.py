"""Why the shipped DRN reads isolated particles off (issue 23): its energy on the truth clusters of isolated
photons, electrons and charged pions, against the clusters' summed energy, per species and energy.

    python benchmarks/calo_drn.py                 # 8 particles per species and energy, seed 7
    python benchmarks/calo_drn.py --per 20 --model path/to/calo_drn.pt

A truth cluster is the hits a particle dominates (what the DRN trains on, `deepreco.calo.train.cluster_samples`),
so no clustering method is involved. Writes benchmarks/results/calo_drn.md and .json. One torch thread.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepreco.calo import limit
from deepreco.calo.modelfile import SHIPPED, load_model
from deepreco.calo.train import batch_clusters, cluster_samples

ENERGIES = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per", type=int, default=8, help="particles per species and energy")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", type=Path, default=SHIPPED / "calo_drn.pt")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    drn, record = load_model(args.model, kinds=("drn",))
    rows = []
    for event in limit.isolated_events(species=(22, 11, 211), energies=ENERGIES, n_per=args.per, seed=args.seed):
        gun = event.particles[event.particles["gun"]]
        samples = [s for s in cluster_samples(event) if len(gun) and np.isclose(s[2], gun["energy"].iloc[0])]
        if not samples:  # nothing of it reached the face, or too little to make a cluster
            continue
        gun = gun.iloc[0]
        x, batch, log_e, _ = batch_clusters(samples[:1])
        with torch.no_grad():
            corr = float(drn(x, batch, log_e)[0])
        e_sum = samples[0][1]
        rows.append({"species": limit.species_name([gun["pdg"]])[0], "energy": float(gun["energy"]),
                     "sum": e_sum / gun["energy"], "drn": e_sum * np.exp(corr) / gun["energy"]})
    df = pd.DataFrame(rows)
    med = df.groupby(["species", "energy"])[["sum", "drn"]].median().unstack("species")
    lines = [f"The DRN ({args.model.name}: {record.get('trained_on', '?')}) on the truth clusters of isolated "
             f"particles, {args.per} per species and energy (seed {args.seed}): median of the cluster's summed "
             "energy / E and of the DRN's energy / E.", "",
             "| energy | " + " | ".join(f"{s} sum | {s} DRN" for s in ("photon", "electron", "pion")) + " |",
             "|" + " --- |" * 7]
    for energy, r in med.iterrows():
        lines.append(f"| {energy:g} | " + " | ".join(f"{r[('sum', s)]:.3f} | {r[('drn', s)]:.3f}"
                                                 for s in ("photon", "electron", "pion")) + " |")
    md = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calo_drn.md").write_text(md + "\n")
    (args.out / "calo_drn.json").write_text(json.dumps({"rows": rows, "model": str(args.model.name),
                                                        "trained_on": record.get("trained_on")}, indent=1) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

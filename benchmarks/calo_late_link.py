"""How the linking's ``late_layer`` was chosen (issue 23): a cluster whose shower starts at that layer or later
counts as a hadron's piece (`deepreco.calo.clue.link_hadronic`). On tuning events none of the benchmarks use
(seed 21): isolated pions found and their median response, isolated photons and electrons found, gun events'
particles found, and a 20 GeV photon beside a 20 GeV pi+ at 20-80 mm (both counted), per method and layer.

    python benchmarks/calo_late_link.py                               # clue, gravnet, garnet; layers 0 4 6 8 10
    python benchmarks/calo_late_link.py --methods clue --layers 0 8

Pions of 5, 10, 20, 50, 100, 200 GeV (20 each), photons and electrons of 5, 20, 100 GeV (10 each), 30 gun events,
20 pairs a distance. Writes benchmarks/results/calo_late_link.md. One torch thread; about 10 minutes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from calo import markdown

from deepreco.calo import limit
from deepreco.calo.evaluate import run_method
from deepreco.calo.guns import pair
from deepreco.calo.methods import get_method
from deepreco.calo.metrics import particle_table
from deepreco.calo.simulate import gun_event, simulate

DISTANCES = (20, 30, 50, 80)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["clue", "gravnet", "garnet"])
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 4, 6, 8, 10])
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    groups = {"pion": limit.isolated_events(species=(211,), energies=(5.0, 10.0, 20.0, 50.0, 100.0, 200.0),
                                            n_per=20, seed=args.seed),
              "photon, electron": limit.isolated_events(species=(22, 11), energies=(5.0, 20.0, 100.0), n_per=10,
                                                        seed=args.seed),
              "gun": [gun_event(i, seed=args.seed) for i in range(30)]}
    pairs = {}
    for d in DISTANCES:
        pairs[d] = []
        for i in range(20):
            rng = np.random.default_rng([args.seed, int(d), i])
            event = simulate(pair(d, species=(22, 211), energy=(20.0, 20.0), seed=rng), seed=rng, tracker_x0=0.0)
            event.event_id = i
            pairs[d].append(event)
    rows = []
    for name in args.methods:
        for layer in args.layers:
            method = get_method(name)
            method.link_late_layer = layer
            row = {"method": name, "late layer": "off" if layer == 0 else str(layer)}
            for g, events in groups.items():
                tables = [particle_table(ev, *method.reconstruct(ev)) for ev in events]
                p = pd.concat([t if g == "gun" else t[t["gun"]] for t in tables], ignore_index=True)
                row[f"{g} found"] = p["found"].mean()
                if g == "pion":
                    row["pion response"] = p.loc[p["found"], "response"].median()
            for d, events in pairs.items():
                row[f"gamma+pi {d} mm"] = run_method(method, events)[0]["efficiency"]
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    lines = [f"Tuning events (seed {args.seed}): 120 isolated pions of 5-200 GeV, 60 photons and electrons, 30 gun "
             "events, a 20 GeV photon beside a 20 GeV pi+ (20 a distance, both counted). 'late layer': a cluster "
             "whose shower starts there or later links as a hadron's piece.", "",
             markdown(df.set_index(["method", "late layer"]))]
    md = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calo_late_link.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

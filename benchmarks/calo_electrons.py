"""Where isolated electrons are lost (issue 23): for each electron a method does not find, the share of its
energy its bremsstrahlung photons from the tracker carried and how far from the electron they reached the face.

    python benchmarks/calo_electrons.py                   # CLUE and GravNet, 5, 10, 20 GeV, 30 electrons each
    python benchmarks/calo_electrons.py --methods clue --per 10

The electrons are `limit.isolated_events`' (seed 11): truth at the level of the shot electron, its brems' hits
counted with it; the photons are those the boundary-crossing truth makes particles (above 1 GeV). Writes
benchmarks/results/calo_electrons.md and .json. One torch thread.
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
from deepreco.calo.guns import fixed
from deepreco.calo.methods import get_method
from deepreco.calo.metrics import particle_table
from deepreco.calo.simulate import simulate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="clue,gravnet")
    parser.add_argument("--per", type=int, default=30, help="electrons per energy")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    methods = {name: get_method(name) for name in args.methods.split(",")}
    rows = []
    for energy in (5.0, 10.0, 20.0):
        for i in range(args.per):
            # as limit.isolated_events draws them, keeping the event before its truth is lifted to the electron
            rng = np.random.default_rng([args.seed, 11, int(round(energy * 1000)), i])
            table = fixed([11 * (1 if rng.uniform() < 0.5 else -1)], [energy], [rng.uniform(1.7, 2.8)],
                          [rng.uniform(-np.pi, np.pi)])
            raw = simulate(table, seed=rng)
            event = limit.primaries(raw)
            p = raw.particles.set_index("particle_id")
            if 1 not in p.index:  # the electron itself bent out of the calorimeter's face: no electron to find
                continue
            brems = p[p["parent_id"] == 1]
            share = float(brems["energy"].sum() / energy)
            far = float(np.hypot(brems["x"] - p.loc[1, "x"], brems["y"] - p.loc[1, "y"]).max()) if len(brems) else 0.0
            for name, method in methods.items():
                found = particle_table(event, *method.reconstruct(event))
                found = bool(found.loc[found["particle_id"] == 1, "found"].any())
                rows.append({"method": name, "energy": energy, "found": found, "brem_share": share,
                             "brem_far_mm": far})
    df = pd.DataFrame(rows)
    lines = [f"Isolated electrons, {args.per} per energy (seed {args.seed}); brem share: the energy of its tracker "
             "bremsstrahlung photons above 1 GeV over the electron's; far: the largest distance of one of them from "
             "the electron at the face.", "",
             "| method | energy | found | lost | lost with brem share > 0.4 | median brem share of the lost | "
             "median far (mm) of the lost |", "|" + " --- |" * 7]
    for (name, energy), g in df.groupby(["method", "energy"], sort=False):
        lost = g[~g["found"]]
        lines.append(f"| {name} | {energy:g} | {g['found'].mean():.3f} | {len(lost)} | "
                     f"{int((lost['brem_share'] > 0.4).sum())} | "
                     + (f"{lost['brem_share'].median():.2f} | {lost['brem_far_mm'].median():.0f} |" if len(lost)
                        else "- | - |"))
    md = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calo_electrons.md").write_text(md + "\n")
    (args.out / "calo_electrons.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

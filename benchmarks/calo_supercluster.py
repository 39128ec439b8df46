"""How the superclusters' window was chosen (issue 23): on tuning events none of the benchmarks use (seed 21),
each method's isolated electrons found and their median response, isolated photons found, and the gun events'
particles found, with plain clusters and with superclusters of a few windows.

    python benchmarks/calo_supercluster.py                       # clue, gravnet, edgeconv, garnet; 30 a point
    python benchmarks/calo_supercluster.py --methods clue --per 10

Electrons of 5, 10, 20, 50 GeV and photons of 5 and 20 GeV (`limit.isolated_events`, ``--per`` and half as many),
20 gun events (`simulate.gun_event`, seed 21). The electrons' truth is at the level of the shot electron (its
tracker bremsstrahlung counted with it). Writes benchmarks/results/calo_supercluster.md. One torch thread;
a few minutes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch
from calo import markdown

from deepreco.calo import limit
from deepreco.calo.methods import get_method
from deepreco.calo.metrics import particle_table
from deepreco.calo.simulate import gun_event
from deepreco.calo.supercluster import Window, superclusters

WINDOWS = {"default": Window(), "narrower eta band (0.03 + 0.4 dphi^2)": Window(eta_base=0.03, eta_curve=0.4),
           "phi window x 0.6": Window(phi_scale=0.6), "phi window x 1.5": Window(phi_scale=1.5)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="clue,gravnet,edgeconv,garnet")
    parser.add_argument("--per", type=int, default=30, help="electrons per energy (photons: half)")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    groups = {"e": limit.isolated_events(species=(11,), energies=(5.0, 10.0, 20.0, 50.0), n_per=args.per,
                                         seed=args.seed),
              "gamma": limit.isolated_events(species=(22,), energies=(5.0, 20.0), n_per=max(1, args.per // 2),
                                             seed=args.seed),
              "gun": [gun_event(i, seed=args.seed) for i in range(20)]}
    rows = []
    for name in args.methods.split(","):
        method = get_method(name)
        outputs = {g: [(ev, method.reconstruct(ev)) for ev in events] for g, events in groups.items()}
        for label, window in {"plain clusters": None, **WINDOWS}.items():
            row = {"method": name, "clusters": label}
            for g, pairs in outputs.items():
                tables = []
                for ev, (ht, cl) in pairs:
                    if window is not None:
                        ht, cl = superclusters(ev.hits, ht, cl, window=window)
                    p = particle_table(ev, ht, cl)
                    tables.append(p if g == "gun" else p[p["gun"]])
                p = pd.concat(tables, ignore_index=True)
                row[f"{g} found"] = p["found"].mean()
                if g == "e":
                    for energy, e in p.groupby(p["energy"].round()):
                        row[f"e {energy:g} GeV"] = e["found"].mean()
                    row["e response"] = p.loc[p["found"], "response"].median()
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    cols = ["method", "clusters", "e found"] + [c for c in df.columns if c.endswith(" GeV")] + [
        "e response", "gamma found", "gun found"]
    lines = [f"Tuning events (seed {args.seed}): isolated electrons ({args.per} an energy), photons "
             f"({max(1, args.per // 2)} an energy), 20 gun events; found = the share of those particles found.", "",
             markdown(df[cols].set_index(["method", "clusters"]))]
    md = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calo_supercluster.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

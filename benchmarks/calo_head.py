"""Does a network's energy head help? A condensation network's cluster energy was the sum of its hits times the
network's predicted correction exp(head); this compares it with the plain sum (`OCClustering.energy_head`).

    python benchmarks/calo_head.py                                  # gravnet, edgeconv, garnet
    python benchmarks/calo_head.py --methods gravnet --per 20

Before any calibration (the curves are learned after this choice, `deepreco.calo.calibration`): per species and
energy the resolution (68 % half-width / median of E_reco / E) of the found shot particles, which a calibration
curve (one factor per energy) does not change, beside the limit's (each particle's own deposit, the same
events); and on gun events (seed 0) the same width per kind over all energies. Tuning events none of the other
benchmarks use (seed 21). Writes benchmarks/results/calo_head.md. One torch thread; about 10 minutes.
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
from deepreco.calo.metrics import particle_table, robust_resolution
from deepreco.calo.simulate import gun_event

ENERGIES = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
SPECIES = (22, 11, 211)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["gravnet", "edgeconv", "garnet"])
    parser.add_argument("--per", type=int, default=30, help="isolated particles per species and energy")
    parser.add_argument("--gun", type=int, default=40, help="gun events")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    isolated = limit.isolated_events(species=SPECIES, energies=ENERGIES, n_per=args.per, seed=args.seed)
    gun = [gun_event(i, seed=args.seed) for i in range(args.gun)]
    rows, gun_rows = [], []
    lim = limit.limit_table(limit.perfect_particles(isolated)).reset_index()
    for r in lim.itertuples():
        rows.append({"species": r.species, "energy": r.energy, "column": "limit", "value": r.resolution})
    for name in args.methods:
        for head in (True, False):
            method = get_method(name, calibrated=False)
            method.energy_head = head
            column = f"{name} {'head' if head else 'sum'}"
            found = []
            for ev in isolated:
                p = particle_table(ev, *method.reconstruct(ev))
                found.append(p[p["gun"] & p["found"]])
            p = pd.concat(found, ignore_index=True)
            p["species"] = limit.species_name(p["pdg"])
            for (sp, e), g in p.groupby(["species", "energy"]):
                rows.append({"species": sp, "energy": e, "column": column,
                             "value": robust_resolution(g["response"])[1]})
            p = pd.concat([(t := particle_table(ev, *method.reconstruct(ev)))[t["found"]] for ev in gun],
                          ignore_index=True)
            for kind, label in ((1, "EM"), (2, "hadronic")):
                med, res = robust_resolution(p.loc[p["kind"] == kind, "response"])
                gun_rows.append({"method": name, "energy": "head" if head else "sum of hits", "kind": label,
                                 "particles": int((p["kind"] == kind).sum()), "median response": med,
                                 "resolution": res})
            print(column, "done", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).pivot_table(index=["species", "energy"], columns="column", values="value",
                                           sort=False)
    table = table[["limit", *(c for c in table.columns if c != "limit")]]
    lines = [f"Isolated particles ({args.per} a species and energy, seed {args.seed}), found shot particles, before "
             "calibration: resolution = 68 % half-width / median of E_reco / E; 'head': the sum of a cluster's hits "
             "times the network's correction, 'sum': the sum alone; 'limit': each particle's own deposit.", "",
             markdown(table), "",
             f"{args.gun} gun events (seed {args.seed}), found particles of all energies, before calibration (the "
             "width includes the response's change with energy):", "",
             markdown(pd.DataFrame(gun_rows).set_index(["method", "energy", "kind"]))]
    md = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calo_head.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

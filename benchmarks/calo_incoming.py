"""How the linking's ``track_layers`` was chosen (issue 23): a cluster that a hadron's track leads into (MIP-like
hits on that many CE-E layers in front of its shower, along its line) counts as a hadron's piece
(`deepreco.calo.clue.incoming_tracks`, `link_hadronic`). The same tuning events and figures as
`calo_late_link.py` (seed 21): isolated pions found and their median response, isolated photons and electrons
found, gun events' particles found, a 20 GeV photon beside a 20 GeV pi+ at 20-80 mm.

    python benchmarks/calo_incoming.py                                # clue, gravnet, garnet; 0 2 3 4 layers
    python benchmarks/calo_incoming.py --methods clue --track-layers 0 3

Writes benchmarks/results/calo_incoming.md. One torch thread; about 10 minutes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch
from calo import markdown
from calo_late_link import measure, tuning_events

from deepreco.calo.methods import get_method


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["clue", "gravnet", "garnet"])
    parser.add_argument("--track-layers", type=int, nargs="+", default=[0, 2, 3, 4])
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    groups, pairs = tuning_events(args.seed)
    rows = []
    for name in args.methods:
        for n in args.track_layers:
            method = get_method(name)
            method.link_track_layers = n
            row = {"method": name, "track layers": "off" if n == 0 else str(n), **measure(method, groups, pairs)}
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    lines = [f"Tuning events (seed {args.seed}): 120 isolated pions of 5-200 GeV, 60 photons and electrons, 30 gun "
             "events, a 20 GeV photon beside a 20 GeV pi+ (20 a distance, both counted). 'track layers': a cluster "
             "with a hadron's track on that many CE-E layers in front of its shower links as a hadron's piece "
             "(each method's late layer as it is).", "",
             markdown(pd.DataFrame(rows).set_index(["method", "track layers"]))]
    md = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calo_incoming.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

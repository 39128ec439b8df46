"""Does linking a hadron's pieces (`clue.link_hadronic`, 150 mm at the face) cost the hard particles of tau
events under pile-up? CLUE and GravNet (calibrated, as `get_method` gives them) with ``link_mm`` 150 and 0, on
the tau events of `benchmarks/calo.py --parts taus` (seed 0; 3 events at mu = 50, 1 at 140 and 200; 10 at 0).

    python benchmarks/calo_link_pileup.py      # writes benchmarks/results/calo_link_pileup.txt

One thread; a few minutes on the 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from calo import markdown

from deepreco.calo import pileup
from deepreco.calo.methods import get_method
from deepreco.threads import set_threads

RESULTS = Path(__file__).resolve().parent / "results"
EVENTS = {0: 10, 50: 3, 140: 1, 200: 1}


def main() -> None:
    set_threads(1)
    rows = []
    for mu, n in EVENTS.items():
        for i in range(n):
            event = pileup.tau_event(i, seed=0, mu=mu)
            for name in ("clue", "gravnet"):
                for link in (150.0, 0.0):
                    method = get_method(name)
                    method.link_mm = link
                    counts, _ = pileup.hard_figures(event, *method.reconstruct(event))
                    rows.append({"mu": mu, "event": i, "method": name, "link_mm": link, **counts})
            print(f"mu {mu} event {i} done", flush=True)
    df = pd.DataFrame(rows)
    table = df.groupby(["mu", "method", "link_mm"], sort=False).agg(
        events=("event", "count"), hard=("hard", "sum"), found=("found", "sum"), fakes=("fakes", "mean"),
        pileup_clusters=("pileup_clusters", "mean")).reset_index()
    table["efficiency"] = (table["found"] / table["hard"]).round(3)
    text = ("Tau events (seed 0) under pile-up, hard particles (>= 10 GeV): the linking of hadron pieces on "
            "(150 mm) and off (0), calibrated methods; fakes and pile-up clusters per event.\n\n"
            + markdown(table.set_index("mu")))
    (RESULTS / "calo_link_pileup.txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""Does linking a hadron's pieces (`clue.link_hadronic`, 150 mm at the face) cost the hard particles of tau
events under pile-up, and does a floor on a piece's energy (``link_min_fraction`` of the taking cluster's) keep
what the linking gives isolated pions? CLUE and GravNet, calibrated as `get_method` gives them, with the linking
off (0 mm), on (150 mm), and on with floors of 0.05, 0.1 and 0.2:

- the tau events of `benchmarks/calo.py --parts taus` (seed 0; 10 at mu = 0, 3 at 50, 1 at 140 and 200), the
  hard particles (>= 10 GeV);
- isolated charged pions (`limit.isolated_events`, seed 1 as `calo.py --parts isolated`; 10 an energy at 5, 20,
  50, 100 and 200 GeV): the share found.

    python benchmarks/calo_link_pileup.py      # writes benchmarks/results/calo_link_pileup.txt

One thread; about ten minutes on the 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from calo import markdown

from deepreco.calo import limit, pileup
from deepreco.calo.evaluate import run_method
from deepreco.calo.methods import get_method
from deepreco.threads import set_threads

RESULTS = Path(__file__).resolve().parent / "results"
EVENTS = {0: 10, 50: 3, 140: 1, 200: 1}
VARIANTS = ((0.0, 0.0), (150.0, 0.0), (150.0, 0.05), (150.0, 0.1), (150.0, 0.2))  # (link_mm, link_min_fraction)


def _method(name: str, link_mm: float, fraction: float):
    method = get_method(name)
    method.link_mm, method.link_min_fraction = link_mm, fraction
    return method


def main() -> None:
    set_threads(1)
    rows = []
    for mu, n in EVENTS.items():
        for i in range(n):
            event = pileup.tau_event(i, seed=0, mu=mu)
            for name in ("clue", "gravnet"):
                for link, fraction in VARIANTS:
                    counts, _ = pileup.hard_figures(event, *_method(name, link, fraction).reconstruct(event))
                    rows.append({"mu": mu, "event": i, "method": name, "link_mm": link, "min_fraction": fraction,
                                 **counts})
            print(f"mu {mu} event {i} done", flush=True)
    df = pd.DataFrame(rows)
    taus = df.groupby(["mu", "method", "link_mm", "min_fraction"], sort=False).agg(
        events=("event", "count"), hard=("hard", "sum"), found=("found", "sum"), fakes=("fakes", "mean"),
        pileup_clusters=("pileup_clusters", "mean")).reset_index()
    taus["efficiency"] = (taus["found"] / taus["hard"]).round(3)

    pions = limit.isolated_events(species=(211,), energies=(5.0, 20.0, 50.0, 100.0, 200.0), n_per=10, seed=1)
    iso = []
    for name in ("clue", "gravnet"):
        for link, fraction in VARIANTS:
            _, p = run_method(_method(name, link, fraction), pions)
            p = p[p["gun"]]
            iso.append({"method": name, "link_mm": link, "min_fraction": fraction, "pions": len(p),
                        "efficiency": round(float(p["found"].mean()), 3)})
        print(f"isolated pions, {name} done", flush=True)
    text = ("Tau events (seed 0) under pile-up, hard particles (>= 10 GeV): the linking of hadron pieces off "
            "(link_mm 0), on (150 mm), and on with a floor on a piece's energy (min_fraction of the taking "
            "cluster's); calibrated methods; fakes and pile-up clusters per event.\n\n"
            + markdown(taus.set_index("mu"))
            + "\n\nIsolated charged pions (10 an energy at 5, 20, 50, 100, 200 GeV; seed 1), the share found:\n\n"
            + markdown(pd.DataFrame(iso).set_index("method")))
    (RESULTS / "calo_link_pileup.txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""The time window's K chosen on validation events of taus under pile-up (issue 23, item 4; `deepreco.calo.timing`).

On the validation events of a pile-up training folder (`benchmarks/calo_pileup_train.py`: its 16 in events.pkl
and the 64 more of `benchmarks/calo_pileup_thresholds.py` in val_more.pkl; mu flat in 0-200, cropped to 0.3 around
the hard particles; none of the test events of `benchmarks/calo.py --parts taus`): for each K, the share of the
hard particles' and of the pile-up's energy the window keeps, then each method's hard-particle efficiency, fake
share (of the clusters above 10 GeV) and resolution, as the training's threshold choice judges them. ``--t0-spread
S`` draws each event's t0 for the windows from N(0, S ns), as the error of a measured vertex time would move it;
``--t0-sigma S`` widens the windows by that error (`timing.in_time`'s ``t0_sigma``).

    python benchmarks/calo_time_window.py --events-dir DIR --methods clue clue+t2 clue+t3 clue+t4 garnet garnet+t3 \\
        --models-dir src/deepreco/data/models/pileup --tag pileup
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

OUT = Path(__file__).parent / "results"


def validation_events(folder: Path) -> list:
    if not (folder / "events.pkl").is_file():
        raise SystemExit(f"error: {folder / 'events.pkl'}: no such file (the folder of a pile-up training)")
    events = pickle.loads((folder / "events.pkl").read_bytes())["val"]
    more = folder / "val_more.pkl"
    return events + (pickle.loads(more.read_bytes()) if more.exists() else [])


def kept_energy(events, windows) -> list[dict]:
    from deepreco.calo.guns import PILEUP_ID_OFFSET
    from deepreco.calo.timing import in_time

    rows = []
    for k in windows:
        hard = pu = hard_kept = pu_kept = 0.0
        for e in events:
            keep = in_time(e.hits, k)
            pid = e.truth.set_index("hit_id").loc[e.hits["hit_id"], "particle_id"].to_numpy()
            energy = e.hits["energy"].to_numpy()
            is_hard, is_pu = (pid > 0) & (pid < PILEUP_ID_OFFSET), pid >= PILEUP_ID_OFFSET
            hard, pu = hard + energy[is_hard].sum(), pu + energy[is_pu].sum()
            hard_kept, pu_kept = hard_kept + energy[is_hard & keep].sum(), pu_kept + energy[is_pu & keep].sum()
        rows.append({"k": k, "hard_energy_kept": hard_kept / hard, "pileup_energy_kept": pu_kept / pu})
    return rows


class _Jittered:
    """A windowed method whose t0 is drawn per event from N(0, ``spread``) ns, as a measured vertex time's would."""

    def __init__(self, method, spread: float):
        import numpy as np

        self.method, self.spread, self.rng = method, spread, np.random.default_rng(12345)

    def reconstruct(self, event):
        self.method.t0 = float(self.rng.normal(0.0, self.spread))
        return self.method.reconstruct(event)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events-dir", type=Path, required=True, help="a pile-up training's folder (events.pkl)")
    ap.add_argument("--methods", nargs="+", default=["clue", "clue+t2", "clue+t3", "clue+t4", "clue+t5"])
    ap.add_argument("--models-dir", type=Path)
    ap.add_argument("--windows", type=float, nargs="+", default=[2.0, 3.0, 4.0, 5.0])
    ap.add_argument("--t0-spread", type=float, default=0.0,
                    help="ns: the windows' t0 drawn per event from N(0, this), a measured vertex time's error")
    ap.add_argument("--t0-sigma", type=float, default=0.0,
                    help="ns: the windows widened by this error of t0, in quadrature with each hit's sigma_t")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import torch

    from deepreco.calo.methods import get_method
    from deepreco.calo.pileup import judge_hard

    torch.set_num_threads(1)
    events = validation_events(args.events_dir)
    lines = [f"# python benchmarks/calo_time_window.py --events-dir {args.events_dir} --methods "
             f"{' '.join(args.methods)}" + (f" --models-dir {args.models_dir}" if args.models_dir else "")
             + (f" --t0-spread {args.t0_spread:g}" if args.t0_spread else "")
             + (f" --t0-sigma {args.t0_sigma:g}" if args.t0_sigma else "")
             + (f" --tag {args.tag}" if args.tag else ""),
             f"# {len(events)} validation events (mu flat in 0-200, cropped), one thread", "",
             "| K (sigma_t) | hard particles' energy kept | pile-up energy kept |", "| --- | --- | --- |"]
    kept = kept_energy(events, args.windows)
    lines += [f"| {r['k']:g} | {r['hard_energy_kept']:.3f} | {r['pileup_energy_kept']:.3f} |" for r in kept]
    lines += ["", "| method | hard found | efficiency | fake share | resolution | s |",
              "| --- | --- | --- | --- | --- | --- |"]
    rows = []
    for name in args.methods:
        t0 = time.perf_counter()
        method = get_method(name, args.models_dir)
        if args.t0_sigma and hasattr(method, "t0_sigma"):
            method.t0_sigma = args.t0_sigma
        h = judge_hard(_Jittered(method, args.t0_spread) if args.t0_spread and hasattr(method, "t0") else method,
                       events)
        r = {"method": name, "found": h["found"], "hard": h["hard_particles"], "efficiency": h["efficiency"],
             "fake_share": h["fake_share"], "resolution": h["resolution"], "seconds": time.perf_counter() - t0}
        rows.append(r)
        lines.append(f"| {name} | {r['found']}/{r['hard']} | {r['efficiency']:.3f} | {r['fake_share']:.3f} | "
                     f"{r['resolution']:.3f} | {r['seconds']:.0f} |")
        print(lines[-1], flush=True)
    tag = f"_{args.tag}" if args.tag else ""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"calo_time_window{tag}.md").write_text("\n".join(lines) + "\n")
    (args.out / f"calo_time_window{tag}.json").write_text(json.dumps({"kept": kept, "methods": rows}, indent=1,
                                                                      default=float))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

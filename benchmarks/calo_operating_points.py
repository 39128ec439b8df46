"""A pile-up network's condensation thresholds against CLUE+t3 where issue 23's aim is judged: at high pile-up.

The training chooses (t_beta, t_d) on its validation events of every mu (0-200) by efficiency - (fake share +
resolution) / 2 (`deepreco.calo.train.tune_condensation`); the aim asks, at mu = 200, for more hard particles found
and a better resolution than CLUE's, fakes only reported. For each ``--points`` pair this script writes a copy of
the ``--models-dir`` folder with the network's thresholds set to it (``OUT/TB_TD/``), learns its calibration curves
again (`scripts/calibrate_calo.py`, as for the shipped files), and judges ``NAME+t3`` on the validation events of a
pile-up training (`calo_time_window.validation_events`: events.pkl and val_more.pkl) whose mu is at least
``--mu-min``, and on all of them, beside CLUE+t3 (calibrated by the shipped curves). No test event is used.

    python benchmarks/calo_operating_points.py --events-dir DIR --models-dir src/deepreco/data/models/pileup \\
        --points 0.5,0.5 0.3,0.8 0.5,0.8 --mu-min 140 --out OUT
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from calo_pileup_train import settings
from calo_time_window import validation_events

RESULTS = Path(__file__).parent / "results"
CALIBRATE = Path(__file__).resolve().parents[1] / "scripts" / "calibrate_calo.py"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events-dir", type=Path, required=True, help="a pile-up training's folder (events.pkl)")
    ap.add_argument("--models-dir", type=Path, required=True)
    ap.add_argument("--model", default="garnet")
    ap.add_argument("--points", nargs="+", required=True, metavar="TB,TD")
    ap.add_argument("--mu-min", type=float, default=140.0)
    ap.add_argument("--out", type=Path, required=True, help="where the folders of each point go")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    try:
        points = [tuple(float(v) for v in p.split(",")) for p in args.points]
    except ValueError:
        sys.exit(f"error: --points: expected TB,TD pairs such as 0.5,0.5, got {' '.join(args.points)}")
    if any(len(p) != 2 or not 0 < p[0] < 1 or not p[1] > 0 for p in points):
        sys.exit("error: --points: each TB,TD with 0 < TB < 1 and TD > 0")
    model_file = args.models_dir / f"calo_{args.model}.pt"
    if not model_file.is_file():
        sys.exit(f"error: {model_file}: no such model file")

    import torch

    from deepreco.calo.methods import get_method
    from deepreco.calo.modelfile import load_model, save_model
    from deepreco.calo.pileup import judge_hard
    from deepreco.calo.train import pileup_of
    from deepreco.modelfile import load

    torch.set_num_threads(1)
    events = validation_events(args.events_dir)
    drawn = settings(args.model)
    mus = [pileup_of(drawn, i, "val") for i in range(len(events))]  # the training's own draw of each event's mu
    high = [e for e, mu in zip(events, mus, strict=True) if mu >= args.mu_min]
    samples = {f"mu >= {args.mu_min:g}": high, "all": events}
    rows = []

    def judge(label: str, method) -> None:
        for sample, evs in samples.items():
            h = judge_hard(method, evs)
            rows.append({"method": label, "events": sample, "n_events": len(evs), "found": h["found"],
                         "hard": h["hard_particles"], "efficiency": h["efficiency"], "fake_share": h["fake_share"],
                         "resolution": h["resolution"]})
            print(f"| {label} | {sample} ({len(evs)}) | {h['found']}/{h['hard_particles']} | {h['efficiency']:.3f} "
                  f"| {h['fake_share']:.3f} | {h['resolution']:.3f} |", flush=True)

    judge("clue+t3", get_method("clue+t3"))  # the shipped curves (a network's folder may have none for CLUE)
    net, record = load_model(model_file, (args.model,))
    kept = load(model_file, (f"calo-{args.model}",)).settings
    for tb, td in points:
        folder = args.out / f"{tb:g}_{td:g}"
        folder.mkdir(parents=True, exist_ok=True)
        for f in args.models_dir.iterdir():
            if f.is_file():
                shutil.copy(f, folder / f.name)
        save_model(net, folder / model_file.name, {**record, "t_beta": tb, "t_d": td,
                                                   "thresholds": "set by benchmarks/calo_operating_points.py"}, kept)
        subprocess.run([sys.executable, str(CALIBRATE), "--methods", f"{args.model},{args.model}+t3", "--per", "60",
                        "--models-dir", str(folder), "--out", str(folder)], check=True, capture_output=True)
        judge(f"{args.model}+t3 at t_beta {tb:g}, t_d {td:g}", get_method(f"{args.model}+t3", folder))
    lines = [f"# python benchmarks/calo_operating_points.py --events-dir {args.events_dir} --models-dir "
             f"{args.models_dir} --points {' '.join(args.points)} --mu-min {args.mu_min:g}",
             "# validation events of the pile-up training; calibrated methods; one thread", "",
             "| method | events | hard found | efficiency | fake share | resolution |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['method']} | {r['events']} ({r['n_events']}) | {r['found']}/{r['hard']} | {r['efficiency']:.3f} | "
              f"{r['fake_share']:.3f} | {r['resolution']:.3f} |" for r in rows]
    tag = f"_{args.tag}" if args.tag else ""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"calo_operating_points{tag}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"calo_operating_points{tag}.json").write_text(json.dumps(rows, indent=1, default=float))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

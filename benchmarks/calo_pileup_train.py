"""Train GravNet and GarNet on hadronic taus under pile-up from one simulation of the events (issue 23, item 4).

`deepreco calo train --models NAME --config benchmarks/configs/calo-NAME-pileup.yaml` does one network and simulates
its events itself; both files name the same events (200 + 16 tau events, mu flat in [0, 200], cropped to 0.3 around
the hard particles), so this script simulates them once (``--workers`` processes), keeps them in ``OUT/events.pkl``,
then trains the networks side by side, each in its own process on ``--threads`` threads, each with the trainer's
checkpoints (``OUT/calo_NAME.pt.checkpoints/``; ``--resume`` goes on from the last of each).

    python benchmarks/calo_pileup_train.py --out /tmp/calo_pileup --models gravnet,garnet --workers 2 --threads 1

``--init FILE`` starts the network from a model file instead of the settings' ``init`` (a longer training from a
network trained here: the events of ``OUT/events.pkl`` again, ``--steps`` more steps); ``--time-window K``
trains on the hits within K sigma_t of the hard collision's time (`deepreco.calo.timing`; run it as NAME+tK);
``--more 150:0 100:150-200`` adds training events (150 taus alone, 100 at mu flat in [150, 200]: the settings'
``more_events``, their own seeds; session 34's trials, the README's "Training mixes").
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = Path(__file__).parent / "configs"
DATA_KEYS = ("events", "val_events", "source", "pileup", "crop", "seed", "more_events")


def settings(name: str, more: list[dict] | None = None) -> dict:
    from deepreco.training import settings_for

    s = settings_for(f"calo-{name}", CONFIGS / f"calo-{name}-pileup.yaml")
    return {**s, "more_events": more} if more else s


def more_blocks(specs: list[str]) -> list[dict]:
    """``N:MU`` or ``N:LOW-HIGH`` -> the settings' ``more_events`` blocks."""
    blocks = []
    for spec in specs:
        try:
            n, mu = spec.split(":")
            low, _, high = mu.partition("-")
            blocks.append({"events": int(n), "pileup": [float(low), float(high)] if high else float(low)})
        except ValueError:
            sys.exit(f"error: --more {spec!r}: expected N:MU or N:LOW-HIGH (e.g. 150:0 or 100:150-200)")
    return blocks


def simulate(models: list[str], out: Path, workers: int, more: list[dict] | None = None) -> Path:
    from deepreco.calo.train import simulated_events

    first = settings(models[0], more)
    recipe = {k: first.get(k) for k in DATA_KEYS}
    path = out / "events.pkl"
    if path.exists():
        with open(path, "rb") as f:
            made = pickle.load(f).get("recipe")
        if made is not None and made != recipe:
            sys.exit(f"error: {path} holds other events ({made}); give another --out, or the same --more")
        print(f"events: {path} (simulated before)")
        return path
    for name in models[1:]:
        other = settings(name, more)
        if any(other[k] != first[k] for k in DATA_KEYS):
            sys.exit(f"error: calo-{name}-pileup.yaml names other events than calo-{models[0]}-pileup.yaml")
    first["workers"] = workers
    t0 = time.time()
    events = {"train": simulated_events(first, "train"), "val": simulated_events(first, "val"), "recipe": recipe}
    partial = path.with_suffix(".part")
    with open(partial, "wb") as f:
        pickle.dump(events, f)
    partial.replace(path)
    print(f"events: {len(events['train'])} + {len(events['val'])} simulated in {time.time() - t0:.0f} s "
          f"on {workers} workers -> {path}")
    return path


def train(name: str, out: Path, resume: bool, init: str | None = None, steps: int | None = None,
          time_window: float | None = None, more: list[dict] | None = None) -> None:
    from deepreco.calo.train import clustering_task
    from deepreco.training import fit

    with open(out / "events.pkl", "rb") as f:
        events = pickle.load(f)
    s = settings(name, more)
    if init:
        s["init"] = init
    if steps:
        s["max_steps"] = steps
    if time_window:
        s["time_window"] = time_window
    last = None
    if resume:
        found = sorted((out / f"calo_{name}.pt.checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
        last = found[-1] if found else None
    record = fit(f"calo-{name}", s, out / f"calo_{name}.pt", resume=last, progress=False,
                 make_task=lambda st: clustering_task(name, st, events["train"], events["val"]))
    print(f"{name}: {record['steps']} steps in {record['seconds']:.0f} s, loss {record['train_loss'][0]:.3f} -> "
          f"{record['train_loss'][-1]:.3f}; wrote {out / f'calo_{name}.pt'}"
          + (f" (resumed from {last})" if last else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", default="gravnet,garnet")
    ap.add_argument("--workers", type=int, default=2, help="processes that simulate the events")
    ap.add_argument("--threads", type=int, default=1, help="threads of each training process")
    ap.add_argument("--resume", action="store_true", help="go on from each network's last checkpoint")
    ap.add_argument("--init", help="start from this model file (one network: --models NAME)")
    ap.add_argument("--steps", type=int, help="training steps (default: the settings file's)")
    ap.add_argument("--time-window", type=float, help="train on the hits within K sigma_t of the hard collision's "
                                                       "time (the settings' time_window)")
    ap.add_argument("--more", nargs="+", default=[], metavar="N:MU",
                    help="more training events, N at mu (150:0) or at mu flat in [LOW, HIGH] (100:150-200), after "
                         "the settings' (the settings' more_events)")
    ap.add_argument("--train", help=argparse.SUPPRESS)  # one network, in its own process
    args = ap.parse_args()
    if args.train:
        from deepreco.threads import set_threads

        set_threads(args.threads)
        train(args.train, args.out, args.resume, args.init, args.steps, args.time_window, more_blocks(args.more))
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.init and len(models) != 1:
        sys.exit("error: --init starts one network: name it alone with --models")
    if args.init and not Path(args.init).is_file():
        sys.exit(f"error: --init: no model file {args.init}")
    if args.time_window is not None and not args.time_window > 0:
        sys.exit(f"error: --time-window must be above 0, got {args.time_window}")
    if args.steps is not None and args.steps < 1:
        sys.exit(f"error: --steps must be at least 1, got {args.steps}")
    more = more_blocks(args.more)
    from deepreco.calo.train import more_events
    from deepreco.errors import DeepRecoError

    try:
        more_events({"seed": 0, "more_events": more})
    except DeepRecoError as exc:
        sys.exit(f"error: --more: {exc}")
    args.out.mkdir(parents=True, exist_ok=True)
    simulate(models, args.out, args.workers, more)
    procs = [subprocess.Popen([sys.executable, __file__, "--out", str(args.out), "--train", name,
                               "--threads", str(args.threads)] + (["--resume"] if args.resume else [])
                              + (["--init", str(args.init)] if args.init else [])
                              + (["--steps", str(args.steps)] if args.steps else [])
                              + (["--time-window", str(args.time_window)] if args.time_window else [])
                              + (["--more", *args.more] if args.more else []))
             for name in models]
    try:
        codes = [p.wait() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
    if any(codes):
        sys.exit(f"error: training exited with {codes}")


if __name__ == "__main__":
    main()

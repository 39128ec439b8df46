"""The one trainer's cost: PyTorch Lightning against a plain PyTorch loop taking the same steps, and one process
against two under torchrun (seed 004's LSTM of the seed's size 256-512-1024, on windows of simulated pion guns).

    python benchmarks/trainer.py                  # about 5 minutes on 2 cores; writes results/trainer.{json,txt}
    python benchmarks/trainer.py --events 1 --particles 100 --model lstm   # a quick look

Runs, each in its own process: (1) a plain loop (no Lightning) over the same `Task`, global batches and
schedule, one thread; (2) `deepreco.training.fit`, one process, one thread; (3) the same, one process, two
threads; (4) `torchrun --nproc-per-node 2`, one thread each. Seconds are the training's own (``record.seconds``:
data read and windows built excluded), per epoch. The machine is shared: the two-core runs compete with
whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def make_data(folder: Path, events: int, particles: int) -> None:
    from deepreco.generate import particle_gun
    from deepreco.io import write_event
    from deepreco.simulate import simulate_event

    for i in range(events):
        write_event(simulate_event(particle_gun(n=particles, pdg=211, pt=(0.5, 10.0), seed=500 + i), seed=500 + i,
                                   event_id=i, noise_fraction=0.0), folder)


def plain_loop(settings: dict) -> dict:
    """The trainer's steps without Lightning: the same task, batches, loss, clipping and schedule."""
    import numpy as np
    import torch

    from deepreco.reconstruct.lstm.train import task
    from deepreco.training import GlobalBatches, seeded_order

    torch.manual_seed(int(settings["seed"]))
    t = task(settings)
    opt, sched = t.optimizer(t.net)
    order = seeded_order(t.n_train, int(settings["seed"]))
    epoch = [0]
    train = GlobalBatches(t.n_train, int(settings["batch_size"]), 0, 1, lambda: epoch[0], order)
    val = GlobalBatches(t.n_val, int(settings["batch_size"]), 0, 1, lambda: epoch[0], None)
    start, losses = time.perf_counter(), []
    for epoch[0] in range(int(settings["epochs"])):
        t.net.train()
        for items in train:
            idx = np.array([i for i, _ in items])
            loss = t.loss(t.net, *t.batch("train", idx))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(t.net.parameters(), float(settings["clip_grad_norm"]))
            opt.step()
        sched.step()
        t.net.eval()
        with torch.no_grad():
            total = sum(float(t.loss(t.net, *t.batch("val", np.array([i for i, _ in b])))) * len(b) for b in val)
        losses.append(total / t.n_val)
    return {"seconds": time.perf_counter() - start, "val_loss": losses}


def run_fit(settings: dict, out: str) -> dict:
    from deepreco.training import fit

    r = fit("lstm", settings, out, progress=False, checkpoints=True)
    return {"seconds": r["seconds"], "val_loss": r["val_loss"], "processes": r["processes"], "rank": r["rank"]}


def child(args) -> None:
    """One measured run (inside its own process)."""
    import torch

    torch.set_num_threads(args.threads)
    settings = json.loads(args.settings)
    result = plain_loop(settings) if args.child == "plain" else run_fit(settings, args.out)
    if result.get("rank", 0) == 0:
        Path(args.result).write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=6)
    parser.add_argument("--particles", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", default="lstm-256-512-1024", help="lstm (small, default size) or a preset")
    parser.add_argument("--child", choices=("plain", "fit"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--settings")
    parser.add_argument("--out")
    parser.add_argument("--result")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from deepreco.training import settings_for

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_data(data, args.events, args.particles)
        settings = settings_for("lstm", overrides={"data": str(data), "epochs": args.epochs, "model": args.model})
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        runs = {}
        for name, launcher, kind, threads in [
                ("plain loop, 1 process, 1 thread", [sys.executable], "plain", 1),
                ("Lightning, 1 process, 1 thread", [sys.executable], "fit", 1),
                ("Lightning, 1 process, 2 threads", [sys.executable], "fit", 2),
                ("Lightning, torchrun 2 processes, 1 thread each",
                 [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"], "fit", 1)]:
            result = Path(tmp) / "result.json"
            cmd = [*launcher, __file__, "--child", kind, "--threads", str(threads), "--settings", json.dumps(settings),
                   "--out", str(Path(tmp) / "m.pt"), "--result", str(result)]
            subprocess.run(cmd, env={**env, "OMP_NUM_THREADS": str(threads)}, check=True, capture_output=True)
            runs[name] = json.loads(result.read_text())
            runs[name]["seconds_per_epoch"] = runs[name]["seconds"] / args.epochs
    report = {"command": " ".join(["python", "benchmarks/trainer.py", *sys.argv[1:]]),
              "events": args.events, "particles_per_event": args.particles, "epochs": args.epochs,
              "batch_size": settings["batch_size"], "model": settings["model"], "runs": runs}
    lines = [f"seed 004 LSTM ({settings['model']}), {args.events} pion-gun events of {args.particles} "
             f"pions, batch {settings['batch_size']}, {args.epochs} epochs", ""]
    lines += [f"{name:50s} {r['seconds_per_epoch']:7.2f} s / epoch   final val loss {r['val_loss'][-1]:.5f}"
              for name, r in runs.items()]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "trainer.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "trainer.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

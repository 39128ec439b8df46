"""Track finding on simulated ttbar + mu = 200 events: every method on the same events, one core each.

    python benchmarks/tracking.py [--events 3] [--seed 1000] [--methods dbscan ckf lstm] [--data DIR] [--threads N]
    python benchmarks/tracking.py --secondaries --events 2 --methods ckf gnn   # events with material secondaries
    python benchmarks/tracking.py --lists 1000 1001 ... 1009                 # the real development lists
    python benchmarks/tracking.py --data DIR --tag NAME ...                    # any folder of events
    python benchmarks/tracking.py --methods gnn gnn:kalman=false              # a method with parameters

The events are simulated once (Pythia 8 ttbar + Poisson(200) pile-up, the real TrackML detector, real noise
rates; seed 1000 by default, which no training script uses) into ``--data`` and reused. Each method runs in
its own process with one thread (``--threads N``: N torch and BLAS threads), so that its peak resident memory
(ru_maxrss) is its own. "Per 10k tracks" is seconds per event x 10,000 / the event's particles with at least
4 hits. Results go to ``benchmarks/results/tracking.txt`` and ``.json``: a run of some methods replaces their
rows (each row says its thread count) and keeps the other methods' rows when they were measured on the same
events. ``--secondaries`` simulates the events with the secondaries of nuclear interactions
(``simulate_event(secondaries=True)``) and writes ``tracking_secondaries.txt`` and ``.json`` instead; ``--tag
NAME`` writes ``tracking_NAME.*`` (for a ``--data`` folder of other events, e.g. real TrackML lists simulated
with ``deepreco simulate -g trackml``). ``--lists N ...`` runs on TrackML's real particle lists of those development
events (1000-1009; never 1010-1020), each simulated with seed 1 (`real_lists.real_list_folder`), and writes
``tracking_lists.*`` (the README's headline figures).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import sys
from pathlib import Path
from queue import Empty

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _spec(text: str) -> tuple[str, dict]:
    """``name`` or ``name:key=value,key=value`` -> (name, params); values as ``deepreco reconstruct --set`` reads
    them (`deepreco.registry.setting_value`: true, 0.3, ...)."""
    from deepreco.registry import setting_value

    name, _, rest = text.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"--methods {text}: expected NAME or NAME:KEY=VALUE,...")
        params[key] = setting_value(value)
    return name, params


def _run(method: str, data: str, n_events: int, threads: int, queue) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import numpy as np
    import torch

    from deepreco.io import Dataset
    from deepreco.reconstruct import evaluate_method

    torch.set_num_threads(threads)
    name, params = _spec(method)
    result = evaluate_method(Dataset(data), name, n_events=n_events, params=params)
    per_10k = [r["seconds"] * 1e4 / max(r["n_reconstructable"], 1) for r in result["events"]]
    result["seconds_per_10k_tracks"] = float(np.mean(per_10k))
    result["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["threads"] = threads
    queue.put(result)


def main() -> None:
    from deepreco.reconstruct import available_methods
    from deepreco.simulate.dataset import simulate_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1000)
    import importlib.util

    # acts-ckf needs the acts extra (pyacts): in the default run only where it is installed
    have_acts = importlib.util.find_spec("acts") is not None
    parser.add_argument("--methods", nargs="+", help="NAME or NAME:KEY=VALUE,... (method parameters)",
                        default=[m for m in available_methods() if m != "truth" and (have_acts or m != "acts-ckf")])
    parser.add_argument("--data", default=None, help="folder of the simulated events (made when empty)")
    parser.add_argument("--threads", type=int, default=1, help="threads per method (torch, BLAS)")
    parser.add_argument("--secondaries", action="store_true", help="events with material secondaries")
    parser.add_argument("--tag", default=None, help="results in tracking_TAG.txt / .json")
    parser.add_argument("--lists", type=int, nargs="+", default=None,
                        help="real development particle lists (1000-1009) instead of generated events")
    args = parser.parse_args()
    if args.lists:
        from real_lists import real_list_folder

        if args.secondaries or args.data:
            raise SystemExit("--lists: not with --secondaries or --data")
        folder = Path("/tmp/deepreco-bench/lists-seed1-" + "_".join(map(str, args.lists)))
        args.data = str(real_list_folder(args.lists, folder))
        args.events = len(args.lists)
        args.tag = args.tag or "lists"

    # "-soft": the secondaries' second parametrisation (soft, isotropic); a folder of the first is not reused
    extra = "-secondaries-soft" if args.secondaries else ""
    data = Path(args.data or f"/tmp/deepreco-bench/ttbar-mu200-seed{args.seed}-n{args.events}{extra}")
    if not data.is_dir() or not any(data.iterdir()):
        print(f"simulating {args.events} ttbar + mu = 200 events into {data} ...", flush=True)
        simulate_dataset("ttbar", args.events, data, seed=args.seed, format="parquet", workers=2, pileup=200,
                         secondaries=args.secondaries)

    kind = " with material secondaries" if args.secondaries else ""
    events = (f"{args.events} events of {data}" if args.data and args.tag
              else f"{args.events} simulated ttbar + mu = 200{kind} (seed {args.seed}), {data}")
    tag = args.tag or ("secondaries" if args.secondaries else None)
    name = f"tracking_{tag}" if tag else "tracking"
    previous = json.loads((RESULTS / f"{name}.json").read_text()) if (RESULTS / f"{name}.json").exists() else {}
    results = {m: r for m, r in previous.items() if r.get("events_run") == events and m not in args.methods}
    ctx = mp.get_context("spawn")
    # a stopped benchmark (Ctrl-C, kill) takes its method's process with it: SIGTERM ends this one through the
    # except below, as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    for method in args.methods:
        queue = ctx.Queue()
        proc = ctx.Process(target=_run, args=(method, str(data), args.events, args.threads, queue))
        proc.start()
        try:
            result = None
            while result is None:
                try:
                    result = queue.get(timeout=5)
                except Empty:
                    if not proc.is_alive():  # it failed (its traceback is above): say so instead of waiting forever
                        raise SystemExit(f"{method}: its process ended (exit code {proc.exitcode}) without a "
                                         "result") from None
        except BaseException:  # KeyboardInterrupt, or SystemExit from SIGTERM
            proc.terminate()
            proc.join()
            raise
        proc.join()
        result.pop("events")
        results[method] = {**result, "events_run": events}
        print(_row(method, result), flush=True)
    lines = [f"machine: {platform.platform()}, {os.cpu_count()} CPUs; python {platform.python_version()}",
             f"events: {events}", "",
             f"{'method':16s} {'score':>7s} {'eff.':>7s} {'perfect':>7s} {'fakes':>7s} {'dupl.':>7s} "
             f"{'s/event':>8s} {'CPU s/ev':>8s} {'s/10k tr.':>9s} {'peak MB':>8s} {'threads':>7s}"]
    lines += [_row(m, results[m]) for m in sorted(results)]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


def _row(method: str, r: dict) -> str:
    return (f"{method:16s} {r['score']:7.4f} {r['efficiency']:7.4f} {r['efficiency_perfect']:7.4f} "
            f"{r['fake_rate']:7.4f} {r['duplicate_rate']:7.4f} {r['seconds_per_event']:8.2f} "
            f"{r.get('cpu_seconds_per_event', float('nan')):8.2f} "
            f"{r['seconds_per_10k_tracks']:9.2f} {r['peak_memory_mb']:8.0f} {r.get('threads', 1):7d}")


if __name__ == "__main__":
    main()

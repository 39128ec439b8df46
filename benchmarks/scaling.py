"""Events on Dask: events per second for simulate + reconstruct with 1 and 2 workers, Dask's overhead against a
plain loop, and the scheduler's cost per task.

    python benchmarks/scaling.py [--events 24] [--particles 300] [--method ckf] [--rounds 2] [--tasks 2000]

Each event is a gun of ``--particles`` particles (pT 0.5-10 GeV, the gun's defaults) simulated on the TrackML
detector with real noise (`deepreco simulate -g gun`), then reconstructed with ``--method`` (`deepreco
reconstruct`), through the library's own functions (`simulate_dataset`, `reconstruct_dataset`):

- ``loop``: one worker, no scheduler: the plain loop in this process (torch at one thread);
- ``dask-1`` / ``dask-2``: a `LocalCluster` of 1 / 2 worker processes (one thread each) started beforehand and
  used through its address, so the figures are for a running cluster; starting one is timed apart.

Each configuration runs ``--rounds`` times, in turn with the others, and its best round is kept (the machine is
shared). Dask's overhead on one worker is (dask-1 - loop) / loop. The scheduler's cost per task: ``--tasks``
tasks that do nothing, submitted and gathered as a run's events are (`EventRunner.run`), on 1 and 2 workers.
The CPU seconds of each event are measured inside the tasks. Then, on paper, what 100 nodes would do with those
costs. Results go to ``benchmarks/results/scaling.txt``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# Seconds per event on one thread of this machine, from the README (benchmarks/simulate.py, tracking.py): a
# Pythia 8 ttbar + mu = 200 event (generation 4.6 s + simulation 1.72 s) and gnn's 14.6 s on it.
TTBAR_SECONDS = {"generate + simulate": 4.6 + 1.72, "gnn": 14.6}


def _noop(item):
    return item


def _stage_seconds(run, stage: str, out: Path, args, scheduler, events: int) -> float:
    from deepreco.io import Dataset
    from deepreco.reconstruct import reconstruct_dataset
    from deepreco.simulate.dataset import simulate_dataset

    events_dir, tracks_dir = out / f"{run}-events", out / f"{run}-tracks"
    start = time.perf_counter()
    if stage == "simulate":
        shutil.rmtree(events_dir, ignore_errors=True)
        simulate_dataset("gun", events, events_dir, seed=1, format="parquet", workers=1, scheduler=scheduler,
                         n=args.particles)
    else:
        shutil.rmtree(tracks_dir, ignore_errors=True)
        reconstruct_dataset(Dataset(events_dir), args.method, tracks_dir, workers=1, scheduler=scheduler)
    return time.perf_counter() - start


def _cpu_per_event(scheduler, args, out: Path) -> dict:
    """CPU seconds of one event's simulation and reconstruction, measured in the process that ran them."""
    from functools import partial

    from deepreco.distributed import EventRunner

    with EventRunner(1, scheduler) as runner:
        rows = runner.run(partial(_timed_event, args.particles, args.method, str(out / "cpu")), range(4))
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


def _timed_event(particles: int, method: str, out: str, index: int) -> dict:
    from deepreco.distributed import per_process
    from deepreco.io import read_event
    from deepreco.reconstruct import get_method
    from deepreco.simulate.dataset import simulate_one

    algo = per_process(f"benchmark:{method}", lambda: get_method(method))
    c0 = time.process_time()
    event_id = simulate_one("gun", index, 99, index, Path(out), "parquet", {"n": particles})
    c1 = time.process_time()
    event = read_event(Path(out) / f"event{event_id:09d}")
    c2 = time.process_time()
    algo.reconstruct(event)
    c3 = time.process_time()
    return {"simulate_cpu": c1 - c0, "read_cpu": c2 - c1, "reconstruct_cpu": c3 - c2}


def _task_overhead(scheduler: str, n_tasks: int) -> tuple[float, float]:
    """Seconds per task that does nothing: through deepreco's runner (a result back per task as it ends, as
    a run's events come back), and through Dask alone (``Client.map`` then one ``gather``)."""
    from distributed import Client

    from deepreco.distributed import EventRunner

    with EventRunner(1, scheduler) as runner:
        runner.run(_noop, range(50))  # warm
        start = time.perf_counter()
        runner.run(_noop, range(n_tasks))
        ours = (time.perf_counter() - start) / n_tasks
    with Client(scheduler, set_as_default=False) as client:
        start = time.perf_counter()
        client.gather(client.map(_noop, range(n_tasks), pure=False))
        plain = (time.perf_counter() - start) / n_tasks
    return ours, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=24)
    parser.add_argument("--particles", type=int, default=300)
    parser.add_argument("--method", default="ckf")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=RESULTS / "scaling.txt")
    args = parser.parse_args()

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    import logging

    import torch
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    lines = [f"# benchmarks/scaling.py --events {args.events} --particles {args.particles} --method {args.method} "
             f"--rounds {args.rounds} --tasks {args.tasks}",
             f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch "
             f"{torch.__version__}; load average at the start {os.getloadavg()[0]:.2f} (machine shared)"]
    work = Path(tempfile.mkdtemp(prefix="deepreco-scaling-"))
    clusters = {}
    try:
        for n in (1, 2):
            start = time.perf_counter()
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   memory_limit=0, silence_logs=logging.ERROR)
            up = time.perf_counter() - start
            with Client(cluster, set_as_default=False) as client:  # the first task imports deepreco and torch
                client.run(__import__, "deepreco.reconstruct")
            clusters[f"dask-{n}"] = (cluster, cluster.scheduler_address)
            lines.append(f"LocalCluster of {n} worker(s): up in {up:.1f} s, deepreco imported in "
                         f"{time.perf_counter() - start - up:.1f} s more")
        configs = {"loop": None, **{name: address for name, (_, address) in clusters.items()}}
        # warm every configuration once (the methods' first calls, numba's kernels), then the timed rounds
        for name, address in configs.items():
            _stage_seconds(name, "simulate", work, args, address, 2)
            _stage_seconds(name, "reconstruct", work, args, address, 2)
        best = {(name, stage): float("inf") for name in configs for stage in ("simulate", "reconstruct")}
        for round_ in range(args.rounds):
            for name, address in configs.items():
                for stage in ("simulate", "reconstruct"):
                    seconds = _stage_seconds(name, stage, work, args, address, args.events)
                    best[name, stage] = min(best[name, stage], seconds)
                    print(f"round {round_}: {name} {stage} {seconds:.2f} s", flush=True)
        lines.append("")
        lines.append(f"{args.events} gun events of {args.particles} particles, simulated then reconstructed with "
                     f"{args.method}; best of {args.rounds} rounds, wall clock:")
        lines.append(f"{'run':<8}{'simulate s':>12}{'reconstruct s':>15}{'events/s':>10}{'speed-up':>10}")
        base = best["loop", "simulate"] + best["loop", "reconstruct"]
        for name in configs:
            total = best[name, "simulate"] + best[name, "reconstruct"]
            lines.append(f"{name:<8}{best[name, 'simulate']:>12.2f}{best[name, 'reconstruct']:>15.2f}"
                         f"{args.events / total:>10.3f}{base / total:>10.2f}")
        dask1 = best["dask-1", "simulate"] + best["dask-1", "reconstruct"]
        lines.append(f"Dask's overhead on one worker against the plain loop: {100 * (dask1 - base) / base:+.1f} %")
        cpu = _cpu_per_event(None, args, work)
        lines.append("CPU seconds an event (in the task, one thread): " +
                     ", ".join(f"{k.replace('_cpu', '')} {v:.3f}" for k, v in cpu.items()))
        lines.append("")
        overhead = {}
        for name, (_, address) in clusters.items():
            overhead[name], plain = _task_overhead(address, args.tasks)
            lines.append(f"cost per task, {args.tasks} tasks that do nothing on {name}: {1e3 * overhead[name]:.2f} ms "
                         f"({1 / overhead[name]:.0f} tasks/s) through deepreco's runner, {1e3 * plain:.2f} ms "
                         f"({1 / plain:.0f} tasks/s) through Client.map + gather (client, scheduler and workers "
                         f"on these 2 cores)")
        per_task = min(overhead.values())
        lines.append("")
        lines.append("On paper, 100 nodes of 32 cores (3,200 one-thread workers), from these costs:")
        event = sum(TTBAR_SECONDS.values())
        for what, seconds in ((f"this benchmark's event ({args.method})", sum(cpu.values())),
                              ("a ttbar mu = 200 event, Pythia 8 + simulation + gnn (README: "
                               f"{' + '.join(f'{v:.2f}' for v in TTBAR_SECONDS.values())} s)", event)):
            workers_rate = 3200 / seconds
            cap = 1 / per_task
            lines.append(f"  {what}: {seconds:.2f} s an event -> workers {workers_rate:,.0f} events/s, one "
                         f"scheduler at most {cap:,.0f} tasks/s -> {min(workers_rate, cap):,.0f} events/s "
                         f"({'scheduler' if cap < workers_rate else 'workers'}-bound); a million events in "
                         f"{1e6 / min(workers_rate, cap) / 3600:.1f} h")
    finally:
        for cluster, _ in clusters.values():
            cluster.close()
        shutil.rmtree(work, ignore_errors=True)
    lines.append(f"# load average at the end {os.getloadavg()[0]:.2f}")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()

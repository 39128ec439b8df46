"""How much a seeding of displaced tracks could bring to `lstm`: its grid seeds, then the same plus true seeds.

    python benchmarks/lstm_displaced_ceiling.py [--events 1] [--lists 1001 1003]

The grid's seeds (`seeding.grid_seeds`, the default seeding) of each event are followed by the default `lstm` (the
shipped ensemble of four) and by the shipped model alone; then the true first five hits (`seeding.true_seeds`) of
every particle made more than ``r0`` mm from the beam line (10 and 1) that no grid seed holds perfectly, and none
of whose five hits a grid seed holds, are added as seeds (each claiming its own five hits, as a grid seed claims
its cluster's) and all are followed again: the score a perfect seeding of those particles would add, a ceiling for
a displaced pass. Events: those of `benchmarks/lstm_seeds.py` (the first generated event of the tracking
benchmark, lists 1001 and 1003 simulated with seed 1). One thread. Output:
``benchmarks/results/lstm_displaced_ceiling.txt``.
"""

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from lstm_seeds import event_sets, parse_event_arguments, write_result  # noqa: E402


def main() -> None:
    import numpy as np
    import torch

    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.lstm.seeding import grid_seeds, true_seeds

    torch.set_num_threads(1)
    args = parse_event_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]), events=1)
    lines = [f"tracking events: the first {args.events} of {args.data}; real lists: {args.lists} (simulated, seed 1, "
             f"in {args.lists_data}); mean over each set's events", "",
             "set | seeds | seeds added | lstm (ensemble) score | efficiency | fakes | shipped model alone score"]
    for set_name, events in event_sets(args.data, args.events, args.lists, args.lists_data).items():
        rows: dict[str, list] = {}
        for event in events:
            pid = event.truth.set_index("hit_id")["particle_id"].reindex(event.hits["hit_id"]).to_numpy(np.int64)
            seeds, labels = grid_seeds(event, threads=1)
            truth = true_seeds(event)
            owner = pid[truth[:, 0]]
            particles = event.particles.set_index("particle_id").reindex(owner)
            r0 = np.hypot(particles["vx"], particles["vy"]).to_numpy()
            held = pid[seeds]
            perfect = np.unique(held[(held == held[:, :1]).all(axis=1), 0])
            used = np.zeros(len(pid), bool)
            used[seeds.ravel()] = True
            for name, r_min in (("grid seeds", None), ("+ true seeds r0 > 10 mm", 10.0),
                                ("+ true seeds r0 > 1 mm", 1.0)):
                more = truth[:0] if r_min is None else \
                    truth[(r0 > r_min) & ~np.isin(owner, perfect) & ~used[truth].any(axis=1)]
                given = np.concatenate([seeds, more])
                own = labels.copy()
                own[more] = len(seeds) + np.arange(len(more))[:, None]
                scores = [evaluate(event.truth, event.particles, get_method("lstm", **params).follow(event, given, own))
                          for params in ({}, {"ensemble": False})]
                rows.setdefault(name, []).append((len(seeds), len(more), scores))
        for name, per_event in rows.items():
            ensemble, alone = ({key: np.mean([s[2][i][key] for s in per_event]) for key in ("score", "efficiency",
                                                                                           "fake_rate")}
                               for i in (0, 1))
            lines.append(f"{set_name} | {name} | {sum(s[0] for s in per_event)} | {sum(s[1] for s in per_event)} | "
                         f"{ensemble['score']:.4f} | {ensemble['efficiency']:.4f} | {ensemble['fake_rate']:.4f} | "
                         f"{alone['score']:.4f}")
            print(lines[-1], flush=True)
    write_result("lstm_displaced_ceiling.txt", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Seed 004's figures for its four LSTM variants, their ensemble and the shipped model: the accuracy of the
predicted hits per position 5-9 with true and with clustered seeds, the `lstm` score with true seeds, and the
time per 10k tracks by stage.

    python benchmarks/lstm_variants.py --models DIR [--score shipped ...]   # accuracy (and scores): lstm_variants.txt
    python benchmarks/lstm_variants.py --models DIR --timing --threads 1   # lstm_variants_timing_1thread.txt
    python benchmarks/lstm_variants.py --models DIR --timing --threads 2   # lstm_variants_timing_2threads.txt

``DIR`` holds the variants' model files as `scripts/train_lstm_variants.py` writes them (``bilstm-seed.pt``,
``lstm-2048.pt``, ``lstm-1024.pt``, ``lstm-256-512-1024.pt``); "ensemble" is the four together
(`LSTMTracks(models=[...])`: the mean of their predicted points), "shipped" the model shipped with deepreco;
``small-seed*.pt`` there (the shipped size, 64-64, trained on the variants' events with other seeds) and
"ensemble small" (the shipped model with them).

Events: the first ``--events`` of those `benchmarks/tracking.py` simulated (ttbar + mu = 200, seed 1000), and one
event simulated (seed 1) from each real development list given (1000-1009 only), as `benchmarks/lstm_seeds.py`
makes them.

Accuracy (the seed's figure "accuracy of predicted hits"): for a seed (5 hits), the model predicts the next five
points y5..y9 (one round, as the seed); each point is fitted to the nearest hit on the layer nearest it (the seed's
nearest-neighbour fit, ``point``), and, beyond the seed, the path through the points is crossed with each layer
and the nearest hit of the k-th layer crossed is taken (``path``, the `lstm` method's default fit). A fitted hit
at position k is right when it belongs to the seed's particle (for a clustered seed: the particle most of its
hits come from; a noise hit, or no hit within 25 mm, is wrong). True seeds: the first 5 hits of each particle
with at least 10 hits, at most ``--max-seeds`` of them an event (a fixed random choice). Clustered seeds: the
DBSCAN seeds of the `lstm` method as main has it (``get_method("lstm").seeds``), every seed, at most
``--max-seeds`` an event.

Score (of the models named by ``--score``): `lstm` with true seeds (``seeding="truth"``, the whole pipeline
after seeding: 3 rounds, path fit, assignment), the TrackML score of the event.

Timing (``--timing``): per 10k tracks, on ``--threads`` torch / numba threads, wall clock: seeding (the DBSCAN
seeding of the first tracking event, scaled from its number of seeds to 10k), each model's prediction of the next
5 points for 10k true seeds (one round), the nearest-neighbour fit of their 50k points, and the total (seeding +
the model + fit). Seed 004's table: 192 s on a laptop CPU, 44 s on a GPU (its total for 10k tracks).
"""

import argparse
import os
import sys
import time
from pathlib import Path

THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
os.environ.setdefault("OMP_NUM_THREADS", THREADS)
os.environ.setdefault("NUMBA_NUM_THREADS", THREADS)
sys.path.insert(0, str(Path(__file__).resolve().parent))
VARIANTS = ("bilstm-seed", "lstm-2048", "lstm-1024", "lstm-256-512-1024")
RESULTS = Path(__file__).resolve().parent / "results"


def write(name: str, lines: list[str]) -> None:
    out = RESULTS / name
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out)


def seed_particle(event, seeds):
    """(S,) the particle most of each seed's hits come from (0: noise), and (H,) the particle of each hit."""
    import numpy as np

    pid = event.truth.set_index("hit_id")["particle_id"].reindex(event.hits["hit_id"]).to_numpy(np.int64)
    p = pid[seeds]
    best = np.zeros(len(seeds), np.int64)
    most = np.zeros(len(seeds), np.int64)
    for j in range(seeds.shape[1]):
        n = (p == p[:, j:j + 1]).sum(axis=1)
        better = (n > most) & (p[:, j] != 0)
        best[better], most[better] = p[better, j], n[better]
    return best, pid


def fitted_hits(index, points, seeds, fit: str, max_distance: float = 25.0):
    """(S, 5) hit rows fitted to (S, 5, 3) predicted points (-1: none): ``point``, the nearest hit on each point's
    nearest layer; ``path``, the nearest hit on each of the first 5 layers the path through the points crosses."""
    import numpy as np

    from deepreco.reconstruct.lstm.assign import layer_crossings, match, nearest_free, query_layers

    n = len(seeds)
    out = np.full((n, 5), -1, np.int64)
    if fit == "point":
        hit, _ = match(index, points.reshape(-1, 3), np.repeat(seeds, 5, axis=0), max_distance)
        return hit.reshape(n, 5)
    last = index.xyz[seeds]
    path = np.concatenate([last[:, -1:], points, 2.0 * points[:, -1:] - points[:, -2:-1]], axis=1)
    which, crossing, layer, _ = layer_crossings(index, path, index.layer[seeds[:, -1]])
    rows, dist = query_layers(index, crossing, layer)
    hit, _ = nearest_free(rows, dist, seeds[which], max_distance)
    rank = np.arange(len(which)) - np.searchsorted(which, which)
    keep = rank < 5
    out[which[keep], rank[keep]] = hit[keep]
    return out


def accuracy(event, index, members, seeds) -> dict:
    """Per fit, the (5,) number of seeds whose fitted hit at position 5..9 belongs to the seed's particle."""
    import numpy as np

    from deepreco.reconstruct.lstm.method import predict_mean

    particle, pid = seed_particle(event, seeds)
    points = predict_mean(members, index.xyz[seeds])
    right = {}
    for fit in ("point", "path"):
        hits = fitted_hits(index, points, seeds, fit)
        ok = (hits >= 0) & (pid[np.maximum(hits, 0)] == particle[:, None]) & (particle[:, None] != 0)
        right[fit] = ok.sum(axis=0)
    return right


def model_sets(models_dir: Path) -> dict:
    """The models by name: shipped, the variants found, their ensemble; the small ones found (the shipped size
    with other seeds) and their ensemble with the shipped model."""
    from deepreco.reconstruct.lstm.model import shipped_model_path

    sets = {"shipped": [None]}
    for v in VARIANTS:
        if (models_dir / f"{v}.pt").exists():
            sets[v] = [models_dir / f"{v}.pt"]
    found = [p[0] for name, p in sets.items() if name != "shipped"]
    if len(found) > 1:
        sets["ensemble"] = found
    small = sorted(models_dir.glob("small-seed*.pt"))
    for path in small:
        sets[path.stem] = [path]
    if small:
        sets["ensemble small"] = [shipped_model_path(), *small]
    return sets


def load_events(args):
    from real_lists import check_development, real_list_event

    from deepreco.io import Dataset, read_event

    check_development(args.lists)
    sets = {"tracking events": [e for _, e in zip(range(args.events), Dataset(args.data), strict=False)]}
    for n in args.lists:
        sets[f"real list {n}"] = [read_event(real_list_event(n, Path(args.lists_data) / str(n), seed=1))]
    return sets


def true_seed_sample(event, max_seeds, rng):
    import numpy as np

    from deepreco.reconstruct.lstm import true_seeds

    seeds = true_seeds(event)
    particle, pid = seed_particle(event, seeds)
    count = np.bincount(np.unique(pid[pid > 0], return_inverse=True)[1])
    n_hits = dict(zip(np.unique(pid[pid > 0]), count, strict=True))
    seeds = seeds[np.array([n_hits.get(p, 0) >= 10 for p in particle], bool)]
    return seeds[np.sort(rng.permutation(len(seeds))[:max_seeds])] if len(seeds) > max_seeds else seeds


def figures(args) -> None:
    import numpy as np

    from deepreco.metrics import evaluate
    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.lstm.assign import LayerIndex
    from deepreco.reconstruct.lstm.method import cached_model

    sets = model_sets(Path(args.models))
    events = load_events(args)
    lines = [f"tracking events: the first {args.events} of {args.data}; real lists {args.lists} (simulated, seed 1); "
             f"at most {args.max_seeds} seeds an event; {THREADS} thread(s)",
             "accuracy: share of seeds whose fitted hit at position k belongs to the seed's particle (see the script)",
             "", "set | seeds | model | fit | n seeds | acc y5 | y6 | y7 | y8 | y9 | mean | lstm score (true seeds) | "
             "s / event"]
    print(lines[-1], flush=True)
    for set_name, evs in events.items():
        prepared = []
        for event in evs:
            rng = np.random.default_rng(0)
            clustered = get_method("lstm").seeds(event)
            if len(clustered) > args.max_seeds:
                clustered = clustered[np.sort(rng.permutation(len(clustered))[:args.max_seeds])]
            prepared.append((event, LayerIndex(event.hits, along_weight=0.5),
                             {"true": true_seed_sample(event, args.max_seeds, rng), "clustered": clustered}))
        for name, paths in sets.items():
            members = [cached_model(p)[:2] for p in paths]
            score = None
            if name in args.score:
                start = time.perf_counter()
                kwargs = {"model": paths[0]} if len(paths) == 1 else {"models": paths}
                method = get_method("lstm", seeding="truth", **kwargs)
                score = np.mean([evaluate(e.truth, e.particles, method.reconstruct(e))["score"]
                                 for e, _, _ in prepared])
                seconds = (time.perf_counter() - start) / len(prepared)
            for kind in ("true", "clustered"):
                right, total = {"point": np.zeros(5), "path": np.zeros(5)}, 0
                for event, index, seeds in prepared:
                    for fit, r in accuracy(event, index, members, seeds[kind]).items():
                        right[fit] += r
                    total += len(seeds[kind])
                for fit in ("point", "path"):
                    acc = right[fit] / max(total, 1)
                    tail = (f"{score:.4f} | {seconds:.1f}" if score is not None and kind == "true" and fit == "path"
                            else "- | -")
                    lines.append(f"{set_name} | {kind} | {name} | {fit} | {total} | "
                                 + " | ".join(f"{a:.3f}" for a in acc) + f" | {acc.mean():.3f} | {tail}")
                    print(lines[-1], flush=True)
    write(args.out or "lstm_variants.txt", lines)


def timing(args) -> None:
    import numpy as np
    import torch

    from deepreco.reconstruct import get_method
    from deepreco.reconstruct.lstm.assign import LayerIndex
    from deepreco.reconstruct.lstm.method import cached_model, predict_mean

    torch.set_num_threads(int(THREADS))
    event = load_events(argparse.Namespace(**{**vars(args), "lists": [], "events": 1}))["tracking events"][0]
    start = time.perf_counter()
    n_seeds = len(get_method("lstm").seeds(event))
    seeding = (time.perf_counter() - start) * 10_000 / max(n_seeds, 1)
    seeds = true_seed_sample(event, 10_000, np.random.default_rng(0))
    seeds = np.resize(seeds, (10_000, 5))  # 10k tracks (a few seeds twice where the event has fewer)
    index = LayerIndex(event.hits, along_weight=0.5)
    load = os.getloadavg()
    lines = [f"time per 10k tracks, wall clock, {THREADS} thread(s); load average at the start {load[0]:.1f} on "
             f"{os.cpu_count()} cores (a machine shared with other jobs)",
             f"seeding: DBSCAN seeding of event 0 of {args.data} ({n_seeds} seeds), scaled to 10k seeds",
             "seed 004: 192 s total on a laptop CPU, 44 s on a GPU", "",
             "model | parameters | seeding s | LSTM s | fitting s | total s"]
    sum_lstm, sum_params, fitting = 0.0, 0, 0.0
    for name, paths in model_sets(Path(args.models)).items():
        members = [cached_model(p)[:2] for p in paths]
        if name == "ensemble small":
            continue
        if name == "ensemble":  # its members run one after the other (`predict_mean`): their times add up
            lines.append(f"ensemble (the four, their sum; fit as the last) | {sum_params:,} | {seeding:.1f} | "
                         f"{sum_lstm:.1f} | {fitting:.2f} | {seeding + sum_lstm + fitting:.1f}")
            continue
        predict_mean(members, index.xyz[seeds[:64]])  # warm up
        start = time.perf_counter()
        points = predict_mean(members, index.xyz[seeds])
        lstm = time.perf_counter() - start
        start = time.perf_counter()
        fitted_hits(index, points, seeds, "point")
        fitting = time.perf_counter() - start
        params = sum(sum(p.numel() for p in net.parameters()) for net, _ in members)
        if name in VARIANTS:
            sum_lstm, sum_params = sum_lstm + lstm, sum_params + params
        lines.append(f"{name} | {params:,} | {seeding:.1f} | {lstm:.1f} | {fitting:.2f} | "
                     f"{seeding + lstm + fitting:.1f}")
        print(lines[-1], flush=True)
    write(args.out or f"lstm_variants_timing_{THREADS}thread{'s' if THREADS != '1' else ''}.txt", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="folder of the variants' model files")
    parser.add_argument("--data", default="/tmp/deepreco-bench/ttbar-mu200-seed1000-n3")
    parser.add_argument("--events", type=int, default=1)
    parser.add_argument("--lists", type=int, nargs="*", default=[1001])
    parser.add_argument("--lists-data", default="/tmp/deepreco-bench/fit-reallists")
    parser.add_argument("--max-seeds", type=int, default=2000)
    parser.add_argument("--score", nargs="*", default=[], help="models (by name) whose lstm score with true seeds "
                        "is also measured (slow for the large ones)")
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--out", default=None, help="file name in benchmarks/results (default: by the mode)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(args.threads))
    (timing if args.timing else figures)(args)


if __name__ == "__main__":
    main()

"""DeepCore against the classical jet-core seeding on the same simulated TeV dijet events, one thread.

    python benchmarks/deepcore.py [--events 100] [--seed 0] [--model PATH] [--clean-xy MM] [--clean-angle A]
                                  [--variant-angle A]
    python benchmarks/deepcore.py --tune 200 [--tune-seed 500000]
    python benchmarks/deepcore.py --tune-tracks 40 [--tune-seed 500000]

Events: Pythia 8 QCD dijets, pT-hat 1.8 to 2.4 TeV, seeds ``--seed`` onwards (the shipped model was trained on
seeds 1,000,000 onwards). Jets: anti-kt 0.4, smeared, pT > 1 TeV, |eta| < 1.4. Writes
``benchmarks/results/deepcore.json`` and ``.txt``, and the plots ``deepcore_efficiency.png`` (efficiency
against the distance to the jet axis and jet pT), ``deepcore_eta.png`` (eta residual and correlation) and
``deepcore_display.png`` (one direction's four windows, predicted and true crossing points).

DeepCore's seeds are cleaned across all the windows of an event with the seed's cuts (50 um, 0.002) unless
``--clean-xy`` / ``--clean-angle`` say otherwise; the row ``deepcore_angA`` is the same network output cleaned
with the angle cut ``--variant-angle`` (0 for none), chosen on the tuning events, not on these.

``--tune N`` is the study behind that choice, on other events (seeds ``--tune-seed`` onwards, which must
overlap neither the evaluation's nor the training's): how far apart two seeds of one particle are (from two
windows, from one window) against two seeds of different particles, the seeds' residuals to the truth, and the
efficiency, fake and duplicate rates for a grid of cleaning cuts. Writes ``deepcore_cleaning.txt`` and ``.json``.

``--tune-tracks N`` carries the cleaning choices to tracks (issue 26, item 4), on the first N tuning events: DeepCore's
seeds before cleaning and after each cleaning of `TRACK_CLEANINGS` go through the same track building, scored with
the seed's track-level definitions (`deepreco.deepcore.evaluate`, ``tracks=True``): seeds, seed- and track-level
efficiency, fake and duplicate rates, seconds of seeding and building per event (one thread). Adds the section
``tracks`` to ``deepcore_cleaning.json`` and its table to ``deepcore_cleaning.txt`` (replacing an earlier one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

RESULTS = Path(__file__).resolve().parent / "results"
TUNE_XY = (0.02, 0.03, 0.04, 0.05, 0.07, 0.10)
TUNE_ANGLE = (0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020)
QUANTILES = (0.25, 0.5, 0.68, 0.9, 0.95)
# (dxy [mm], dangle) of the cleanings carried to tracks; the first is the seed's
TRACK_CLEANINGS = ((0.05, 0.002), (0.03, 0.006), (0.05, 0.015), (0.10, 0.015))
TRACKS_MARK = "\n--- cleaning carried to tracks"


def _machine() -> str:
    return f"{platform.platform()}, {os.cpu_count()} CPUs shared with other users, one thread"


def _overlap(a0: int, n_a: int, b0: int, n_b: int) -> bool:
    return a0 < b0 + n_b and b0 < a0 + n_a


def _check_tuning_seeds(args, info: dict, n_tune: int) -> None:
    """Exit with one line when the ``n_tune`` tuning events share seeds with the evaluation or the model's
    training events (``info``: the model file's record)."""
    train0, n_train = int(info.get("first_seed", 1_000_000)), int(info.get("events", 0))
    for name, (a0, n_a) in (("evaluation", (args.seed, args.events)), ("training", (train0, n_train))):
        if _overlap(args.tune_seed, n_tune, a0, n_a):
            sys.exit(f"error: tuning seeds {args.tune_seed}..{args.tune_seed + n_tune - 1} overlap the "
                     f"{name} seeds {a0}..{a0 + n_a - 1}")


def tune(args, model_path: Path) -> None:
    """The cleaning study on the tuning events (see the module docstring)."""
    import numpy as np
    import pandas as pd

    from deepreco.deepcore.detector import PixelBarrel
    from deepreco.deepcore.evaluate import associate, pair_differences, rates, raw_deepcore_seeds, sim_tracks
    from deepreco.deepcore.events import make_event
    from deepreco.deepcore.seeds import SIGMA, clean_seeds
    from deepreco.deepcore.train import load_model

    model, info = load_model(model_path)
    _check_tuning_seeds(args, info, args.tune)
    det = PixelBarrel()
    seeds, tracks = [], []
    for i in range(args.tune):
        ev = make_event(args.tune_seed + i)
        t = sim_tracks(ev).assign(event=ev.event_id)
        s, _ = raw_deepcore_seeds(ev, model, det)
        pid, chi2 = associate(s, t)
        seeds.append(s.assign(particle_id=pid, chi2=chi2))
        tracks.append(t)
    seeds, tracks = pd.concat(seeds, ignore_index=True), pd.concat(tracks, ignore_index=True)
    tracks["uid"] = tracks["event"].to_numpy(np.int64) * (1 << 40) + tracks["particle_id"].to_numpy()
    pooled = tracks.assign(particle_id=tracks["uid"])

    def score(s):
        uid = np.where(s["particle_id"] >= 0, s["event"].to_numpy(np.int64) * (1 << 40) + s["particle_id"], -1)
        return rates(uid, pooled)

    out = {"events": args.tune, "first_seed": args.tune_seed, "machine": _machine(), "raw": score(seeds)}
    # how far apart seeds are: duplicates (one particle; two windows, one window) and two particles
    pairs = pair_differences(seeds)
    groups = {"one particle, two windows": pairs[pairs["same_particle"] & ~pairs["same_window"]],
              "one particle, one window": pairs[pairs["same_particle"] & pairs["same_window"]],
              "two particles": pairs[~pairs["same_particle"]]}
    cols = ["dxy", "dz", "deta", "dphi"]
    out["pairs"] = {k: {"n": len(g), "quantiles": {str(q): g[cols].quantile(q).to_dict() for q in QUANTILES},
                        "pass_seed_cuts": {c: float((g[c] < (0.05 if c in ("dxy", "dz") else 0.002)).mean())
                                           for c in cols}} for k, g in groups.items()}
    t = tracks.drop_duplicates(["event", "particle_id"])
    m = seeds[seeds["particle_id"] >= 0].merge(t, on=["event", "particle_id"], suffixes=("", "_true"))
    res = {"rphi": np.hypot(m["x"] - m["x_true"], m["y"] - m["y_true"]), "z": (m["z"] - m["z_true"]).abs(),
           "eta": (m["eta"] - m["eta_true"]).abs(),
           "phi": np.abs(np.mod(m["phi"] - m["phi_true"] + np.pi, 2 * np.pi) - np.pi)}
    out["residual_68"] = {k: float(np.quantile(v, 0.68)) for k, v in res.items()}
    out["sigma"] = SIGMA
    out["scan"] = []
    for dxy in TUNE_XY:
        for da in TUNE_ANGLE:
            r = score(clean_seeds(seeds, dxy, da))
            out["scan"].append({"dxy_mm": dxy, "dangle": da, **r})
    (RESULTS / "deepcore_cleaning.json").write_text(json.dumps(out, indent=1))

    def f(x):
        return f"{x:.3f}" if x is not None else "n/a"

    lines = [f"machine: {out['machine']}",
             f"tuning events: {args.tune} Pythia dijets, seeds {args.tune_seed}..{args.tune_seed + args.tune - 1} "
             f"(not the evaluation's, not the training's); {out['raw']['tracks']} simulated tracks, "
             f"{len(seeds)} DeepCore seeds before cleaning",
             f"before cleaning: efficiency {f(out['raw']['efficiency'])}, fake {f(out['raw']['fake_rate'])}, "
             f"duplicate {f(out['raw']['duplicate_rate'])}", "",
             "associated seeds' residuals to the truth, 68 % of |residual| below: "
             f"r-phi {1000 * out['residual_68']['rphi']:.0f} um, z {1000 * out['residual_68']['z']:.0f} um, "
             f"eta {out['residual_68']['eta']:.4f}, phi {out['residual_68']['phi']:.4f} "
             f"(seed's uncertainties: 44 um, 0.002)", "",
             "differences between two seeds (|d| quantiles 25/50/68/90/95 %; fraction under the seed's cut)"]
    for k, g in out["pairs"].items():
        lines.append(f"  {k} ({g['n']} pairs within 0.3 mm):")
        for c in cols:
            qs = " ".join(f"{g['quantiles'][str(q)][c]:.4f}" for q in QUANTILES)
            lines.append(f"    {c:<5} {qs}   under cut {g['pass_seed_cuts'][c]:.3f}")
    lines += ["", f"{'dxy [mm]':>9}{'dangle':>8}{'efficiency':>11}{'fake':>8}{'duplicate':>11}{'seeds':>8}"]
    for r in out["scan"]:
        lines.append(f"{r['dxy_mm']:>9.3f}{r['dangle']:>8.3f}{f(r['efficiency']):>11}{f(r['fake_rate']):>8}"
                     f"{f(r['duplicate_rate']):>11}{r['seeds']:>8d}")
    # the angle cut beyond which, at the position cut args.clean_xy, cleaning no longer changes (within 1 %)
    row = [r for r in out["scan"] if abs(r["dxy_mm"] - args.clean_xy) < 1e-12]
    if row:
        widest = row[-1]["seeds"]
        sat = next(r["dangle"] for r in row if r["seeds"] <= 1.01 * widest)
        lines.append(f"\nat dxy = {args.clean_xy:.3f} mm the angle cut stops mattering (seeds within 1 % of "
                     f"dangle = {row[-1]['dangle']:.3f}) from dangle = {sat:.3f}")
    text = "\n".join(lines) + "\n"
    (RESULTS / "deepcore_cleaning.txt").write_text(text)
    print(text)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def tune_tracks(args, model_path: Path) -> None:
    """The cleanings of `TRACK_CLEANINGS` carried to tracks on the tuning events (module docstring)."""
    from deepreco.deepcore.evaluate import evaluate
    from deepreco.deepcore.train import load_model

    _, info = load_model(model_path)
    _check_tuning_seeds(args, info, args.tune_tracks)
    first, *others = TRACK_CLEANINGS
    variants = {f"xy{dxy:g}_ang{da:g}": (dxy, da) for dxy, da in others}
    r = evaluate(args.tune_tracks, args.tune_seed, model_path, clean_xy=first[0], clean_angle=first[1],
                 variants=variants, tracks=True)
    rows = {"none": r["deepcore"]["before_cleaning"], f"xy{first[0]:g}_ang{first[1]:g} (seed's)": r["deepcore"],
            **{k: r[k] for k in variants}, "pairs + K-means": r["baseline_kmeans"]}

    def f(x):
        return f"{x:.3f}" if x is not None else "n/a"

    lines = [TRACKS_MARK.strip() + f" (--tune-tracks {args.tune_tracks}: events {args.tune_seed}.."
             f"{args.tune_seed + args.tune_tracks - 1}, {r['tracks']} seed-level tracks pT > 1 GeV, "
             f"{r['track_level']['sim_tracks']} track-level pT > 0.9 GeV; one thread, shared machine) ---",
             f"{'cleaning':<26}{'seeds':>7}{'seed eff':>9}{'fake':>7}{'dup':>7}{'track eff':>10}{'fake':>7}{'dup':>7}"
             f"{'tracks':>7}{'seeding s':>10}{'building s':>11}"]
    for name, x in rows.items():
        lines.append(f"{name:<26}{x['seeds']:>7d}{f(x['efficiency']):>9}{f(x['fake_rate']):>7}"
                     f"{f(x['duplicate_rate']):>7}{f(x['track_efficiency']):>10}{f(x['track_fake_rate']):>7}"
                     f"{f(x['track_duplicate_rate']):>7}{x['reco_tracks']:>7d}"
                     f"{x['seeding_seconds_per_event']:>10.4f}{x['building_seconds_per_event']:>11.4f}")
    path = RESULTS / "deepcore_cleaning.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["tracks"] = {"events": args.tune_tracks, "first_seed": args.tune_seed, "machine": _machine(),
                      "rows": {k: {c: v for c, v in x.items() if c != "before_cleaning"} for k, x in rows.items()}}
    _write(path, json.dumps(data, indent=1))
    txt = RESULTS / "deepcore_cleaning.txt"
    old = txt.read_text().split(TRACKS_MARK)[0] if txt.exists() else ""
    _write(txt, old.rstrip("\n") + "\n" + "\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    from deepreco.deepcore.evaluate import SHIPPED_MODEL
    from deepreco.deepcore.seeds import CLEAN_ANGLE, CLEAN_XY

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--clean-xy", type=float, default=CLEAN_XY, help="cleaning distance on layer 2 [mm]")
    parser.add_argument("--clean-angle", type=float, default=CLEAN_ANGLE, help="cleaning difference in eta, phi")
    # 0.015: from `--tune 200` (seeds 500,000..): at 50 um the angle cut stops mattering from 0.015 on, i.e. the
    # position alone decides (deepcore_cleaning.txt); the angles do not tell two tracks of a jet core apart
    parser.add_argument("--variant-angle", type=float, default=0.015,
                        help="also clean with this angle cut (chosen with --tune on other events); 0: no variant")
    parser.add_argument("--tune", type=int, default=0, metavar="N", help="run the cleaning study on N events")
    parser.add_argument("--tune-seed", type=int, default=500_000, help="first event seed of the cleaning study")
    parser.add_argument("--tune-tracks", type=int, default=0, metavar="N",
                        help="carry the cleanings to tracks on the first N tuning events")
    args = parser.parse_args()
    if args.events < 1 or args.tune < 0 or args.tune_tracks < 0:
        parser.error("--events must be at least 1, --tune and --tune-tracks at least 0")
    if not (args.clean_xy > 0 and args.clean_angle > 0 and args.variant_angle >= 0):
        parser.error("--clean-xy and --clean-angle must be positive, --variant-angle positive or 0")

    import numpy as np
    import torch

    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.tune or args.tune_tracks:
        if args.tune:
            tune(args, args.model)
        if args.tune_tracks:
            tune_tracks(args, args.model)
        return

    from deepreco.deepcore.evaluate import HEADER, evaluate, format_row
    from deepreco.deepcore.events import make_event
    from deepreco.deepcore.plots import plot_display, plot_efficiency, plot_eta
    from deepreco.deepcore.train import load_model
    from deepreco.deepcore.windows import build_windows, dense_targets

    variants = {}
    if args.variant_angle > 0:
        variants[f"deepcore_ang{args.variant_angle:.3f}"] = (args.clean_xy, args.variant_angle)
    result = evaluate(args.events, args.seed, args.model, keep=True, clean_xy=args.clean_xy,
                      clean_angle=args.clean_angle, variants=variants)
    records = result.pop("records")
    result["machine"] = _machine()
    (RESULTS / "deepcore.json").write_text(json.dumps(result, indent=1))
    plot_efficiency(records["tracks"], RESULTS / "deepcore_efficiency.png")
    plot_eta(records["seeds"]["deepcore"], records["tracks"], RESULTS / "deepcore_eta.png")

    # event display: the direction of the first event with the most true crossing points
    model, _ = load_model(args.model)
    windows = build_windows(make_event(args.seed))
    flags, _, _ = dense_targets(len(windows.inputs), windows.t_index, windows.t_kind, windows.t_params)
    prob, _ = model.predict(torch.from_numpy(windows.inputs), torch.from_numpy(windows.jet))
    sample = int(np.argmax(flags.sum(axis=(1, 2, 3))))
    plot_display(windows, prob.numpy(), flags, sample, RESULTS / "deepcore_display.png")

    info = result["model"]
    dc = result["deepcore"]
    raw = dict(dc["before_cleaning"], seconds_per_event=dc["seconds_per_event"] - dc["stages"]["cleaning"])
    lines = [f"machine: {result['machine']}",
             f"events: {result['events']} Pythia dijets (pT-hat 1.8-2.4 TeV, seeds {args.seed}..), "
             f"{result['jets']} jets (pT > 1 TeV, |eta| < 1.4), {result['tracks']} simulated tracks "
             "(pT > 1 GeV, DeltaR < 0.1, crossing layer 2)",
             f"model: trained on {info.get('windows', info.get('samples'))} windows from {info.get('events')} "
             f"events, {info.get('epochs')} epochs, {info.get('train_seconds', info.get('seconds'))} s",
             f"deepcore cleaning (all windows of an event, global coordinates): {args.clean_xy:.3f} mm, "
             f"{args.clean_angle:.3f} in eta and phi" + (f"; {', '.join(variants)}: {args.clean_xy:.3f} mm, "
                                                         f"{args.variant_angle:.3f}" if variants else ""),
             "", HEADER, format_row("deepcore_uncleaned", raw)]
    lines += [format_row(name, result[name]) for name in ("deepcore", *variants, "baseline", "baseline_kmeans")]
    st = dc["stages"]
    lines += ["", "seconds per event, from the same fired pixels and clusters to cleaned seeds on layer 2 "
              "(no track building for either):",
              f"  deepcore: windows {st['windows']:.4f} + network {st['network']:.4f} + extraction "
              f"{st['extract']:.4f} + cleaning {st['cleaning']:.4f} = {dc['seconds_per_event']:.4f}"]
    for name in variants:
        lines.append(f"  {name}: the same + cleaning {result[name]['stages']['cleaning']:.4f} = "
                     f"{result[name]['seconds_per_event']:.4f}")
    lines += [f"  {name}: cluster selection{' + K-means splitting' if 'kmeans' in name else ''} + pairs = "
              f"{result[name]['seconds_per_event']:.4f}" for name in ("baseline", "baseline_kmeans")]
    text = "\n".join(lines) + "\n"
    (RESULTS / "deepcore.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

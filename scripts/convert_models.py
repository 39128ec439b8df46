"""One-off: convert model files of the five formats deepreco had before issue 19 into its one model-file format
(`deepreco.modelfile`), weights unchanged (each tensor is compared after the write).

    python scripts/convert_models.py [FILE.pt ...]     # default: every shipped model, converted in place

A file already in the new format is left alone. The old files carried no training settings: ``settings`` stays
empty and ``record`` keeps what the old file said about its training, plus ``converted_from``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from deepreco.modelfile import FORMAT, SHIPPED, ModelFile, load, read_torch, save

OLD_FORMATS = "lstm (deepreco.lstm-track-extender v2), gnn (deepreco.gnn-tracks v1), embedding, deepcore, calo"


def convert_payload(old: dict) -> ModelFile:
    """The new model file of an old payload (`torch.load` of an old file)."""
    kind = old.get("kind")
    if kind == "deepreco.lstm-track-extender":
        return ModelFile("lstm", {"net": old["state_dict"]},
                         {"architecture": old["architecture"], "normalisation": old["normalisation"]},
                         record={**old.get("info", {}), "converted_from": f"{kind} v{old.get('version')}"})
    if kind == "deepreco.gnn-tracks":
        return ModelFile("gnn", {"filter": old["filter"]["state_dict"], "gnn": old["gnn"]["state_dict"]},
                         {"filter": old["filter"]["hparams"], "gnn": old["gnn"]["hparams"],
                          "filter_threshold": float(old["filter_threshold"]),
                          "edge_threshold": float(old["edge_threshold"])},
                         record={**old.get("info", {}), "converted_from": f"{kind} v{old.get('version')}"},
                         tensors={"module_map": old["module_map"]})
    if kind == "deepreco.gnn-embedding":
        info = old.get("info", {})
        return ModelFile("embedding", {"net": old["state_dict"]},
                         {"hparams": old["hparams"], "radius": info.get("radius"), "k_max": info.get("k_max")},
                         record={**info, "converted_from": kind})
    if old.get("format") == "deepreco-deepcore-v1":
        return ModelFile("deepcore", {"net": old["state_dict"]}, {},
                         record={**old.get("info", {}), "converted_from": old["format"]})
    if old.get("format") == "deepreco.calo":
        extra = old.get("extra", {})
        return ModelFile(f"calo-{old['kind']}", {"net": old["state_dict"]},
                         {"network": old["config"], **{k: extra[k] for k in ("t_beta", "t_d") if k in extra}},
                         record={**extra, "converted_from": f"deepreco.calo {old['kind']}"})
    raise SystemExit(f"error: unknown model format (kind {kind!r}, format {old.get('format')!r}); "
                     f"this script reads {OLD_FORMATS}")


def convert(path: Path) -> str:
    old = read_torch(path)
    if isinstance(old, dict) and old.get("format") == FORMAT:
        return f"{path}: already a {old.get('kind')} model file in the new format"
    new = convert_payload(old)
    save(new, path)
    back = load(path, new.kind)
    tensors = [(new.weights[n][k], back.weights[n][k]) for n in new.weights for k in new.weights[n]]
    tensors += [(new.tensors[k], back.tensors[k]) for k in new.tensors]
    if not all(torch.equal(a, b) for a, b in tensors) or back.weights.keys() != new.weights.keys():
        raise SystemExit(f"error: {path}: weights differ after conversion")
    return f"{path}: {new.kind}, {len(tensors)} tensors, identical"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    for path in args.files or sorted(SHIPPED.glob("*.pt")):
        print(convert(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ONNX export with torch's dynamo exporter, checked by onnxruntime against the torch network.

The TorchScript exporter is not used: it turns the interaction network's ``index_add_`` with repeated indices
into a graph that is silently wrong (measured: errors up to 21 on its own export input). Each export is run
by onnxruntime on inputs of several sizes, once as they are and once with their rows permuted (edges
reordered and nodes renumbered for the graph networks), and compared with the torch network on the
unpermuted inputs: a frozen neighbour list or a shape baked in at trace time shows as a mismatch there. Any
mismatch beyond the network's tolerance (|onnx - torch| <= atol + rtol |torch|) is an error.

The calorimeter networks may leave a few rows (hits) beyond it (``outlier_share``, 1 %): where a hit's k-th
and (k+1)-th neighbours in a learned space are nearly equally far, the float32 rounding of that space, which
differs between onnxruntime and torch in the last bits, decides which one it takes (measured: a squared
distance gap of 9e-6 at 0.011 in GravNet's third layer moved one hit's outputs by 7e-3). A graph that froze
the traced event's neighbours differs in nearly every row of the permuted check.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import DeepRecoError
from ..paths import made_folder
from .networks import NETWORKS, Network, Outputs, get_network


def require_onnx():
    """onnx, onnxruntime and onnxscript, or one line saying how to get them."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise DeepRecoError(f"export and serving need onnx, onnxruntime and onnxscript ({exc.name} is missing): "
                            "pip install 'deepreco[serve]'") from None
    return onnxruntime


def session(path, threads: int = 1):
    ort = require_onnx()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _dynamic_shapes(net: Network, graph: torch.nn.Module) -> tuple:
    dims = tuple({i: torch.export.Dim.DYNAMIC for i, d in enumerate(t.dims) if isinstance(d, str)}
                 for t in net.inputs)
    return (dims,) if isinstance(graph, Outputs) else dims  # Outputs takes its inputs as *inputs


def export_onnx(net: Network, graph: torch.nn.Module, example: tuple, path: Path) -> None:
    """Write ``graph`` traced on ``example`` to ``path`` with the dynamic dims of ``net``."""
    require_onnx()
    quiet = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), \
            torch.no_grad():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(graph, example, dynamo=True, dynamic_shapes=_dynamic_shapes(net, graph),
                                        input_names=[t.name for t in net.inputs],
                                        output_names=[t.name for t in net.outputs], verbose=False)
            program.save(str(path))
        except Exception as exc:  # the exporter raises many kinds; one line naming the network
            cause = exc.__cause__ or exc
            first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            raise DeepRecoError(f"{net.name}: ONNX export failed ({first[:200]})") from None


def check_onnx(net: Network, reference, path: Path, seed: int = 0) -> list[dict]:
    """Run the export on every check size, plain and permuted, against ``reference``; returns one record a
    run and raises `DeepRecoError` on the first mismatch beyond tolerance."""
    sess = session(path)
    rng = np.random.default_rng(seed)
    records = []
    for size in net.sizes:
        inputs = net.example(size, rng)
        with torch.no_grad():
            expected = [o.numpy() for o in reference(*inputs)]
        runs = [("plain", inputs, expected)]
        permuted, follow = net.permute(inputs, rng)
        runs.append(("permuted", permuted, [o.numpy() for o in follow(tuple(torch.from_numpy(e)
                                                                             for e in expected))]))
        for how, feed, want in runs:
            got = sess.run([t.name for t in net.outputs], {t.name: v.numpy() for t, v in zip(net.inputs, feed,
                                                                                            strict=True)})
            worst, rows_beyond = 0.0, 0
            for t, g, w in zip(net.outputs, got, want, strict=True):
                if g.shape != w.shape:
                    raise DeepRecoError(f"{net.name}: ONNX output {t.name} has shape {g.shape}, torch {w.shape} "
                                        f"(size {size}, {how})")
                err = np.abs(g.astype(np.float64) - w)
                beyond = (err > net.atol + net.rtol * np.abs(w)).reshape(len(err), -1).any(1) if err.ndim else err
                allowed = int(net.outlier_share * len(beyond)) if err.ndim else 0
                if not np.isfinite(g).all() or int(beyond.sum()) > allowed:
                    raise DeepRecoError(f"{net.name}: ONNX output {t.name} differs from torch by up to "
                                        f"{np.nanmax(err):.3g} in {int(beyond.sum())} rows of {len(beyond)} "
                                        f"(tolerance {net.atol:g} + {net.rtol:g} x |torch| in all but {allowed}; "
                                        f"size {size}, {how})")
                worst = max(worst, float(err.max()) if err.size else 0.0)
                rows_beyond = max(rows_beyond, int(beyond.sum()))
            records.append({"size": size, "rows": how, "max_abs_error": worst, "rows_beyond_tolerance": rows_beyond,
                            "shapes": {t.name: list(v.shape) for t, v in zip(net.inputs, feed, strict=True)}})
    return records


def export_one(name: str, folder: Path, model=None) -> dict:
    """Export the network ``name`` (its model file ``model``, or the shipped one) to ``folder/name.onnx``
    and check it; returns its manifest entry."""
    net = get_network(name)
    graph, reference = net.load(model)
    example = net.example(net.sizes[-1], np.random.default_rng(1))
    path = folder / f"{name}.onnx"
    export_onnx(net, graph, example, path)
    checks = check_onnx(net, reference, path)
    return {"name": name, "file": path.name, "what": net.what, "note": net.note,
            "model_file": str(model) if model is not None else "shipped",
            "inputs": [_tensor(t) for t in net.inputs], "outputs": [_tensor(t) for t in net.outputs],
            "batched": net.batched, "tolerance": {"atol": net.atol, "rtol": net.rtol}, "checks": checks,
            "torch": torch.__version__}


def _tensor(t) -> dict:
    return {"name": t.name, "dtype": t.dtype, "dims": list(t.dims)}


def names_for(name: str, model=None) -> list[str]:
    """The networks ``name`` stands for (``all``: every one); ``model`` only with a single network."""
    if name == "all":
        if model is not None:
            raise DeepRecoError("--model needs one network name, not all")
        return list(NETWORKS)
    from .pybackend import PY_MODELS

    if name in PY_MODELS:
        raise DeepRecoError(f"{name} is a Triton Python-backend model, not a network: export it with --triton REPO")
    get_network(name)
    return [name]


@contextlib.contextmanager
def new_folder(out: Path, refusal: str):
    """A temporary folder beside ``out``, renamed to ``out`` when the block ends without error and removed
    otherwise: the folder is complete or absent. An existing ``out`` is refused (``refusal`` says what to do)."""
    out = Path(out)
    if out.exists():
        raise DeepRecoError(f"{out}: already exists; {refusal}")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with made_folder(out.parent):  # the folders above it too: none of them is left empty
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            yield tmp
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def export_networks(name: str, out, model=None, on_done=None) -> list[dict]:
    """Export ``name`` (a network or ``all``) to the folder ``out``: one ``NAME.onnx`` a network and
    ``export.json`` (inputs, outputs, tolerances, every check). The folder is written under a temporary name
    and renamed when all is exported and checked: complete or absent. An existing folder is refused."""
    names = names_for(name, model)
    require_onnx()
    with new_folder(out, "export to a new folder") as tmp:
        entries = []
        for n in names:
            entries.append(export_one(n, tmp, model))
            if on_done is not None:
                on_done(entries[-1])
        (tmp / "export.json").write_text(json.dumps({"networks": entries}, indent=1))
    return entries

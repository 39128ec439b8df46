"""A Triton model repository of the exported networks: ``REPO/NAME/config.pbtxt`` and ``REPO/NAME/1/model.onnx``
(version 1, the file name Triton's ONNX Runtime backend looks for), run by the ``onnxruntime`` backend.

Each config names the inputs and outputs as the ONNX file does, with their dtypes and dims (-1 where the size
is dynamic). A network whose every input and output has the batch first (LSTM seeds, DeepCore windows, toy
events) gets ``max_batch_size`` and dynamic batching, and its dims leave the batch out, as Triton's
configuration asks; the graph networks (hits, edges, clusters in one tensor) get ``max_batch_size: 0`` and
their full shapes. `check_config` parses the text with Triton's own ModelConfig protobuf (from tritonclient,
when installed) and compares it with the ONNX file's inputs and outputs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import DeepRecoError
from .loaders import SHIPPED
from .networks import Network, get_network
from .onnx import export_one, names_for, new_folder, require_onnx
from .pybackend import (
    KNN_CHOICES,
    PY_MODELS,
    TREE_NETWORKS,
    PyModel,
    model_py_text,
    model_source,
    network_model_py_text,
    resolve_knn,
    tree_network,
)

MAX_BATCH = {"lstm": 100_000, "deepcore": 4096}  # seeds, windows a request; toys: TOY_MAX_BATCH events
TOY_MAX_BATCH = 4096
TRITON_DTYPE = {"float32": "TYPE_FP32", "float64": "TYPE_FP64", "int64": "TYPE_INT64"}
ONNX_DTYPE = {1: "float32", 7: "int64"}  # onnx.TensorProto element types


def max_batch_size(net: Network) -> int:
    if not net.batched:
        return 0
    return MAX_BATCH.get(net.name, TOY_MAX_BATCH)


def _block(kind: str, tensors, batch: int) -> str:
    items = []
    for t in tensors:
        dims = [-1 if isinstance(d, str) else int(d) for d in t.dims]
        dims = dims[1:] if batch else dims
        items.append(f'  {{\n    name: "{t.name}"\n    data_type: {TRITON_DTYPE[t.dtype]}\n'
                     f'    dims: [ {", ".join(str(d) for d in dims)} ]\n  }}')
    return f"{kind} [\n" + ",\n".join(items) + "\n]\n"


def config_text(net: Network) -> str:
    """The config.pbtxt of ``net``."""
    batch = max_batch_size(net)
    text = (f'# {net.what}; written by deepreco export\nname: "{net.name}"\nbackend: "onnxruntime"\n'
            f"max_batch_size: {batch}\n" + _block("input", net.inputs, batch) + _block("output", net.outputs, batch) +
            'instance_group [\n  {\n    kind: KIND_AUTO\n  }\n]\nversion_policy: { latest: { num_versions: 1 } }\n')
    if batch:
        text += "dynamic_batching { }\n"
    return text


def py_config_text(model: PyModel | Network) -> str:
    """The config.pbtxt of a Python-backend model (or of a network served by one, ``--knn tree``): one event a
    request (no batching), on the CPU."""
    return (f'# {model.what}; written by deepreco export\nname: "{model.name}"\nbackend: "python"\n'
            "max_batch_size: 0\n" + _block("input", model.inputs, 0) + _block("output", model.outputs, 0) +
            'instance_group [\n  {\n    kind: KIND_CPU\n  }\n]\nversion_policy: { latest: { num_versions: 1 } }\n')


def parse_config(text: str, where):
    """``text`` parsed as Triton's ModelConfig protobuf (from tritonclient); `DeepRecoError` when it is not one."""
    from google.protobuf import text_format

    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise DeepRecoError("checking a Triton config needs tritonclient: pip install 'deepreco[serve]'") from None
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise DeepRecoError(f"{where}: config.pbtxt is not a Triton ModelConfig ({exc})") from None
    return config


def check_py_config(text: str, model: PyModel | Network) -> None:
    """Parse ``text`` as Triton's ModelConfig and compare it with the Python model's inputs and outputs."""
    from tritonclient.grpc import model_config_pb2

    config = parse_config(text, model.name)
    if config.backend != "python" or config.name != model.name:
        raise DeepRecoError(f"{model.name}: config names {config.name!r} with backend {config.backend!r}")
    for kind, declared, wanted in (("input", config.input, model.inputs), ("output", config.output, model.outputs)):
        got = [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in declared]
        want = [(t.name, TRITON_DTYPE[t.dtype], [-1 if isinstance(d, str) else d for d in t.dims]) for t in wanted]
        if got != want:
            raise DeepRecoError(f"{model.name}: config {kind}s {got} are not the model's {want}")


def check_config(text: str, onnx_path: Path) -> None:
    """Parse ``text`` as Triton's ModelConfig and compare it with the ONNX file; `DeepRecoError` on a
    difference. Needs tritonclient (the ``serve`` extra) for the protobuf."""
    import onnx

    config = parse_config(text, onnx_path)
    from tritonclient.grpc import model_config_pb2

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    batch = config.max_batch_size
    for kind, declared, actual in (("input", config.input, graph.input), ("output", config.output, graph.output)):
        if [t.name for t in declared] != [t.name for t in actual]:
            raise DeepRecoError(f"{onnx_path}: config {kind}s {[t.name for t in declared]} are not the ONNX "
                                f"file's {[t.name for t in actual]}")
        for want, have in zip(declared, actual, strict=True):
            dtype = ONNX_DTYPE.get(have.type.tensor_type.elem_type)
            shape = [d.dim_value if d.HasField("dim_value") else -1 for d in have.type.tensor_type.shape.dim]
            shape = shape[1:] if batch else shape
            if model_config_pb2.DataType.Name(want.data_type) != TRITON_DTYPE.get(dtype) or list(want.dims) != shape:
                raise DeepRecoError(f"{onnx_path}: config {kind} {want.name} is "
                                    f"{model_config_pb2.DataType.Name(want.data_type)} {list(want.dims)}, the ONNX "
                                    f"file has {dtype} {shape}")


def repository_names(name: str, model=None) -> tuple[list[str], list[PyModel]]:
    """The networks and the Python models ``name`` stands for: ``all`` every one; a Python model its
    networks too (a BLS model calls them), all from the one model file ``model``."""
    if name in PY_MODELS:
        py = PY_MODELS[name]
        return list(py.networks), [py]
    nets = names_for(name, model)
    return nets, (list(PY_MODELS.values()) if name == "all" else [])


def write_repository(name: str, repo, model=None, on_done=None, knn: str = "graph") -> list[dict]:
    """Export ``name`` (a network, a Python model or ``all``) as a Triton model repository at ``repo``,
    complete or absent; an existing folder is refused. ``knn``: ``graph`` exports the calorimeter networks
    to ONNX with the exact search inside the graph (n^2 work: a GPU's); ``tree`` writes them as Python-backend
    models running the in-process network and its tree search (n log n: a CPU server's), same names, inputs
    and outputs; ``auto``: ``graph`` where torch sees a CUDA GPU, ``tree`` otherwise (`resolve_knn`)."""
    if knn not in KNN_CHOICES:
        raise DeepRecoError(f"unknown neighbour search {knn!r}; expected {', '.join(KNN_CHOICES)}")
    knn = resolve_knn(knn)
    nets, pys = repository_names(name, model)
    require_onnx()
    with new_folder(repo, "write the repository to a new folder") as tmp:
        entries = []
        for n in nets:
            net = get_network(n)
            version = tmp / n / "1"
            version.mkdir(parents=True)
            if knn == "tree" and n in TREE_NETWORKS:
                source = Path(model) if model is not None else SHIPPED / f"calo_{n.removeprefix('calo-')}.pt"
                tree_network(n, source)  # a file of another kind is refused here, before anything is written
                shutil.copyfile(source, version / "model.pt")
                (version / "model.py").write_text(network_model_py_text(n))
                text = py_config_text(net)
                check_py_config(text, net)
                (tmp / n / "config.pbtxt").write_text(text)
                entries.append({"name": n, "file": f"{n}/1/model.py", "backend": "python", "networks": [],
                                "max_batch_size": 0, "knn": "tree"})
                if on_done is not None:
                    on_done(entries[-1])
                continue
            entry = export_one(n, version, model)
            (version / entry["file"]).rename(version / "model.onnx")
            text = config_text(net)
            check_config(text, version / "model.onnx")
            (tmp / n / "config.pbtxt").write_text(text)
            entries.append({**entry, "file": f"{n}/1/model.onnx", "max_batch_size": max_batch_size(net)})
            if on_done is not None:
                on_done(entries[-1])
        for py in pys:
            version = tmp / py.name / "1"
            version.mkdir(parents=True)
            source = model_source(py, model)
            if not source.is_file():
                raise DeepRecoError(f"{source}: no such model file")
            shutil.copyfile(source, version / "model.pt")
            (version / "model.py").write_text(model_py_text(py))
            text = py_config_text(py)
            check_py_config(text, py)
            (tmp / py.name / "config.pbtxt").write_text(text)
            entries.append({"name": py.name, "file": f"{py.name}/1/model.py", "backend": "python",
                            "networks": list(py.networks), "max_batch_size": 0})
            if on_done is not None:
                on_done(entries[-1])
    return entries

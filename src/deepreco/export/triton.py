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

from pathlib import Path

from ..errors import DeepRecoError
from .networks import Network, get_network
from .onnx import export_one, names_for, new_folder, require_onnx

MAX_BATCH = {"lstm": 100_000, "deepcore": 4096}  # seeds, windows a request; toys: TOY_MAX_BATCH events
TOY_MAX_BATCH = 4096
TRITON_DTYPE = {"float32": "TYPE_FP32", "int64": "TYPE_INT64"}
ONNX_DTYPE = {1: "float32", 7: "int64"}  # onnx.TensorProto element types


def max_batch_size(net: Network) -> int:
    if not net.batched:
        return 0
    return MAX_BATCH.get(net.name, TOY_MAX_BATCH)


def config_text(net: Network) -> str:
    """The config.pbtxt of ``net``."""
    batch = max_batch_size(net)

    def block(kind, tensors):
        items = []
        for t in tensors:
            dims = [-1 if isinstance(d, str) else int(d) for d in t.dims]
            dims = dims[1:] if batch else dims
            items.append(f'  {{\n    name: "{t.name}"\n    data_type: {TRITON_DTYPE[t.dtype]}\n'
                         f'    dims: [ {", ".join(str(d) for d in dims)} ]\n  }}')
        return f"{kind} [\n" + ",\n".join(items) + "\n]\n"

    text = (f'# {net.what}; written by deepreco export\nname: "{net.name}"\nbackend: "onnxruntime"\n'
            f"max_batch_size: {batch}\n" + block("input", net.inputs) + block("output", net.outputs) +
            'instance_group [\n  {\n    kind: KIND_AUTO\n  }\n]\nversion_policy: { latest: { num_versions: 1 } }\n')
    if batch:
        text += "dynamic_batching { }\n"
    return text


def check_config(text: str, onnx_path: Path) -> None:
    """Parse ``text`` as Triton's ModelConfig and compare it with the ONNX file; `DeepRecoError` on a
    difference. Needs tritonclient (the ``serve`` extra) for the protobuf."""
    import onnx
    from google.protobuf import text_format

    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise DeepRecoError("checking a Triton config needs tritonclient: pip install 'deepreco[serve]'") from None
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise DeepRecoError(f"{onnx_path}: config.pbtxt is not a Triton ModelConfig ({exc})") from None
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


def write_repository(name: str, repo, model=None, on_done=None) -> list[dict]:
    """Export ``name`` (a network or ``all``) as a Triton model repository at ``repo``, complete or absent;
    an existing folder is refused."""
    names = names_for(name, model)
    require_onnx()
    with new_folder(repo, "write the repository to a new folder") as tmp:
        entries = []
        for n in names:
            net = get_network(n)
            version = tmp / n / "1"
            version.mkdir(parents=True)
            entry = export_one(n, version, model)
            (version / entry["file"]).rename(version / "model.onnx")
            text = config_text(net)
            check_config(text, version / "model.onnx")
            (tmp / n / "config.pbtxt").write_text(text)
            entries.append({**entry, "file": f"{n}/1/model.onnx", "max_batch_size": max_batch_size(net)})
            if on_done is not None:
                on_done(entries[-1])
    return entries

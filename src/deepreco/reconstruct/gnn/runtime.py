"""The edge filter run by onnxruntime in-process, when onnxruntime and onnx are installed (the ``serve`` extra);
torch runs it otherwise, with the same kept edges up to float rounding (tested).

The filter's ONNX graph is written here from the network's weights, in milliseconds (torch's exporter takes
seconds a network, `deepreco.export`): the node halves of its first layer are taken once per event in torch
(`model.project`) and given as inputs, so each chunk of edges is two gathers, a product with the edge features,
and the remaining layers. Each session computes on one thread (``intra_op_num_threads = 1``, no spinning
threads); the chunks are shared among `deepreco.threads`' threads by the caller (`method.filter_graph`), so the
threads taken are the command's ``--threads``, never more.

Measured on the 200,000-edge chunks of an event of real list 1001, one thread: onnxruntime 0.06 to 0.08 s a
chunk, torch 0.11 to 0.14 s. The interaction network is left to torch: its export run by onnxruntime took
4.5 s on that event's 1.16 M filtered edges against torch's 3.4 s.
"""

from __future__ import annotations

import weakref

import numpy as np

from .features import N_EDGE

_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # EdgeFilter -> its session


def available() -> bool:
    """Whether onnxruntime and onnx can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _filter_graph(net) -> bytes:
    """The serialized ONNX model of the `EdgeFilter` ``net`` after its first layer's node products: inputs
    ``nodes_a``, ``nodes_b`` (hits, hidden), ``edge_attr`` (edges, 9), ``src``, ``dst`` (edges,); output
    ``logits`` (edges,)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from torch import nn

    layers = [m for m in net.net if isinstance(m, nn.Linear)]
    others = [type(m) for m in net.net if not isinstance(m, nn.Linear)]
    if any(t is not nn.ReLU for t in others) or len(others) != len(layers) - 1:
        raise ValueError("the filter is not Linear / ReLU layers")  # the shipped and trained filters are
    first = layers[0]
    n_edge = N_EDGE
    hidden = first.out_features
    weights, nodes = [], []

    def const(name, array):
        weights.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    w = first.weight.detach().numpy()
    nodes += [helper.make_node("Gather", ["nodes_a", "src"], ["ga"], axis=0),
              helper.make_node("Gather", ["nodes_b", "dst"], ["gb"], axis=0),
              helper.make_node("Gemm", ["edge_attr", const("w0", w[:, w.shape[1] - n_edge:]),
                                        const("b0", first.bias.detach().numpy())], ["ge"], transB=1),
              helper.make_node("Add", ["ga", "gb"], ["gab"]),
              helper.make_node("Add", ["gab", "ge"], ["h0"])]
    h = "h0"
    for i, layer in enumerate(layers[1:], start=1):
        nodes += [helper.make_node("Relu", [h], [f"r{i}"]),
                  helper.make_node("Gemm", [f"r{i}", const(f"w{i}", layer.weight.detach().numpy()),
                                            const(f"b{i}", layer.bias.detach().numpy())], [f"h{i}"], transB=1)]
        h = f"h{i}"
    weights.append(numpy_helper.from_array(np.array([-1], np.int64), "flat"))
    nodes.append(helper.make_node("Reshape", [h, "flat"], ["logits"]))
    graph = helper.make_graph(
        nodes, "gnn-filter",
        [helper.make_tensor_value_info("nodes_a", TensorProto.FLOAT, ["hits", hidden]),
         helper.make_tensor_value_info("nodes_b", TensorProto.FLOAT, ["hits", hidden]),
         helper.make_tensor_value_info("edge_attr", TensorProto.FLOAT, ["edges", n_edge]),
         helper.make_tensor_value_info("src", TensorProto.INT64, ["edges"]),
         helper.make_tensor_value_info("dst", TensorProto.INT64, ["edges"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["edges"])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def filter_session(net):
    """An onnxruntime session of the `EdgeFilter` ``net`` (made once per network), or None without
    onnxruntime and onnx: the caller runs the filter in torch then."""
    if net in _SESSIONS:
        return _SESSIONS[net]
    if not available():
        return None
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(_filter_graph(net), options, providers=["CPUExecutionProvider"])
    _SESSIONS[net] = session
    return session


def run_filter(session, nodes: tuple[np.ndarray, np.ndarray], attr: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The filter's logits of ``edges`` (2, e) with edge features ``attr`` and ``nodes`` (`model.project` of
    the node features, as NumPy)."""
    return session.run(["logits"], {"nodes_a": nodes[0], "nodes_b": nodes[1], "edge_attr": attr,
                                    "src": np.ascontiguousarray(edges[0]), "dst": np.ascontiguousarray(edges[1])})[0]

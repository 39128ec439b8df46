"""Where `gnn`'s time goes on one event simulated from a real TrackML particle list, and whether onnxruntime
would run the interaction network faster than torch (issue 20, item 4: the aim is 3 s an event on 2 cores).

    python benchmarks/gnn_profile.py [--list 1001] [--threads 1] [--top 15] [--busy]

Part 1: the event (list 1001 simulated with seed 1, the tracking benchmark's, made when missing) reconstructed
once unmeasured (numba's code loaded, the onnxruntime filter session made), then once under cProfile: the
method's seconds per stage, the graph sizes, and the functions that took the most time of their own.
Part 2: one edge network of the shipped interaction network (gather of the two node products, first layer's
edge part, LayerNorm, ReLU, ..., as `model.edge_mlp` runs it in inference) on chunks of 4,096, 16,384 and
65,536 edges of random inputs, in torch and as an ONNX graph written from the same weights run by onnxruntime
on one thread (``intra_op_num_threads = 1``, as `reconstruct.gnn.runtime` runs the filter): milliseconds per
4,096 edges, and the largest difference of their outputs. The method runs the edge networks 8 times an event
(encoder, 6 rounds, classifier) over the filtered edges, in chunks of 4,096.
Part 3: the whole interaction network on the event's filtered edges (part 1's) with torch on 1 or 2 threads,
the chunks shared among 1 or 2 Python threads (what ``classify_edges`` does with ``--threads 2``: torch on one
thread, the chunks shared), and chunks of 4,096 or 16,384 edges: best wall and CPU seconds of 2 runs, and the
largest difference from the first setting's logits. ``--busy``: a ``yes > /dev/null`` process keeps one core
busy during part 3, as another job would.
Results go to ``benchmarks/results/gnn_profile_<N>thread[s][_busy].txt``; the load average before each part is
printed (the machine may be shared).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import sys
import time
from pathlib import Path

from hog import busy_core
from real_lists import real_list_event

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/tmp/deepreco-bench")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def profile_event(number: int, top: int):
    from deepreco.io import Dataset
    from deepreco.reconstruct import get_method

    hits = real_list_event(number, DATA / f"list{number}-seed1")
    ds = Dataset(hits.parent)
    event = ds.read(ds.names[0])
    method = get_method("gnn", kalman=False, later_passes=False)  # the graph pipeline (its stages)
    method.reconstruct(event)
    lines = [f"## part 1: list {number} (seed 1), {event.n_hits:,} hits; load before: {_load()}"]
    profiler = cProfile.Profile()
    wall, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    method.reconstruct(event)
    profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    run = method.last_run
    lines += [f"wall {wall:.2f} s, CPU {cpu:.2f} s (under cProfile)",
              f"module-map graph {run['graph_edges']:,} edges, after the filter {run['filtered_edges']:,}",
              "seconds: " + ", ".join(f"{k.removeprefix('seconds_')} {v:.2f}" for k, v in run.items()
                                      if k.startswith("seconds_")),
              "(graph = the module map's share, filter = the filter with the graph made block by block, gnn = the "
              "interaction network, build = track building)", "",
              f"the {top} functions with the most time of their own:"]
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    body = text.getvalue().splitlines()
    start = next(i for i, line in enumerate(body) if line.strip().startswith("ncalls"))
    lines += [line.replace(str(ROOT) + "/", "") for line in body[start:] if line.strip()]
    return lines, (method, event)


def _edge_mlp_graph(net, hidden: int) -> bytes:
    """The ONNX graph of `model.edge_mlp` of ``net`` (inputs: the node products ``na``, ``nb``, the edge
    features ``e``, ``src``, ``dst``; output ``out``)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    from torch import nn

    weights, nodes = [], []

    def const(name, array):
        weights.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    first = net[0]
    w = first.weight.detach().numpy()
    nodes += [helper.make_node("Gather", ["na", "src"], ["ga"], axis=0),
              helper.make_node("Gather", ["nb", "dst"], ["gb"], axis=0),
              helper.make_node("Gemm", ["e", const("w0", w[:, w.shape[1] - hidden:]),
                                        const("b0", first.bias.detach().numpy())], ["ge"], transB=1),
              helper.make_node("Add", ["ga", "gb"], ["gab"]), helper.make_node("Add", ["gab", "ge"], ["x0"])]
    x = "x0"
    for i, layer in enumerate(net[1:], start=1):
        if isinstance(layer, nn.LayerNorm):
            nodes.append(helper.make_node("LayerNormalization", [x, const(f"g{i}", layer.weight.detach().numpy()),
                                                                 const(f"s{i}", layer.bias.detach().numpy())],
                                          [f"x{i}"], axis=-1, epsilon=layer.eps))
        elif isinstance(layer, nn.ReLU):
            nodes.append(helper.make_node("Relu", [x], [f"x{i}"]))
        else:
            nodes.append(helper.make_node("Gemm", [x, const(f"w{i}", layer.weight.detach().numpy()),
                                                   const(f"b{i}", layer.bias.detach().numpy())], [f"x{i}"], transB=1))
        x = f"x{i}"
    nodes.append(helper.make_node("Identity", [x], ["out"]))
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", hidden]) for n in ("na", "nb")]
    inputs += [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["E", hidden])]
    inputs += [helper.make_tensor_value_info(n, TensorProto.INT64, ["E"]) for n in ("src", "dst")]
    graph = helper.make_graph(nodes, "edge-network", inputs,
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["E", hidden])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def edge_network_runtimes() -> list[str]:
    import numpy as np
    import onnxruntime as ort
    import torch

    from deepreco.reconstruct.gnn.method import cached_model
    from deepreco.reconstruct.gnn.model import edge_mlp, project

    net = cached_model(None).gnn.edge_network
    hidden = net[0].out_features
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(_edge_mlp_graph(net, hidden), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    n_nodes = 100_000
    h = torch.from_numpy(rng.normal(size=(n_nodes, hidden)).astype(np.float32))
    lines = [f"## part 2: one edge network (hidden {hidden}), torch {torch.__version__} on "
             f"{torch.get_num_threads()} thread(s) against onnxruntime {ort.__version__} on one; load before: "
             f"{_load()}", "", f"{'edges a chunk':>13s} {'torch ms/4096':>13s} {'ort ms/4096':>11s} {'max diff':>9s}"]
    with torch.no_grad():
        nodes = project(net, h, h)
        for size in (4096, 16384, 65536):
            e = torch.from_numpy(rng.normal(size=(size, hidden)).astype(np.float32))
            src = torch.from_numpy(rng.integers(0, n_nodes, size))
            dst = torch.from_numpy(rng.integers(0, n_nodes, size))
            feed = {"na": nodes[0].numpy(), "nb": nodes[1].numpy(), "e": e.numpy(), "src": src.numpy(),
                    "dst": dst.numpy()}
            want = edge_mlp(net, nodes, e, src, dst).numpy()
            got = session.run(["out"], feed)[0]
            repeats = max(20, 300 * 4096 // size)
            t = time.perf_counter()
            for _ in range(repeats):
                edge_mlp(net, nodes, e, src, dst)
            t_torch = (time.perf_counter() - t) / repeats * 1e3 * 4096 / size
            t = time.perf_counter()
            for _ in range(repeats):
                session.run(["out"], feed)
            t_ort = (time.perf_counter() - t) / repeats * 1e3 * 4096 / size
            lines.append(f"{size:13,d} {t_torch:13.3f} {t_ort:11.3f} {float(np.abs(got - want).max()):9.1e}")
    return lines


SETTINGS = [(1, 1, 4096), (1, 1, 16384), (1, 2, 4096), (1, 2, 16384), (2, 1, 4096), (2, 1, 16384)]


def network_threads(method, event, busy: bool) -> list[str]:

    import numpy as np
    import torch

    from deepreco.reconstruct.gnn.features import N_EDGE, edge_features, node_features
    from deepreco.reconstruct.gnn.method import cached_model
    from deepreco.reconstruct.gnn.module_map import hit_coordinates

    edges = method.score_graph(event)["edges"]
    net = cached_model(None).gnn
    x = node_features(event)
    coords = hit_coordinates(event.hits[["x", "y", "z"]].to_numpy(np.float64))
    attr = np.empty((edges.shape[1], N_EDGE), np.float32)
    for i in range(0, edges.shape[1], 50_000):
        attr[i:i + 50_000] = edge_features(coords, x, edges[:, i:i + 50_000])
    inputs = torch.from_numpy(x), torch.from_numpy(attr), torch.from_numpy(edges)
    threads_before = torch.get_num_threads()
    spinner = busy_core() if busy else None
    lines = [f"## part 3: the interaction network on the {edges.shape[1]:,} filtered edges"
             f"{', one core kept busy' if busy else ''}; load before: {_load()}", "",
             f"{'torch threads':>13s} {'python threads':>14s} {'chunk':>6s} {'wall s':>7s} {'CPU s':>6s} "
             f"{'max diff':>9s}"]
    reference = None
    try:
        for torch_threads, python_threads, chunk in SETTINGS:
            torch.set_num_threads(torch_threads)
            best = None
            with torch.no_grad():
                for _ in range(2):
                    wall, cpu = time.perf_counter(), time.process_time()
                    logits = net(*inputs, chunk=chunk, threads=python_threads)
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    best = (wall, cpu) if best is None or wall < best[0] else best
            reference = logits if reference is None else reference
            lines.append(f"{torch_threads:13d} {python_threads:14d} {chunk:6d} {best[0]:7.2f} {best[1]:6.2f} "
                         f"{float((logits - reference).abs().max()):9.1e}")
    finally:
        torch.set_num_threads(threads_before)
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=int, default=1001)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--busy", action="store_true", help="one core kept busy during part 3")
    args = parser.parse_args()
    from deepreco.threads import set_threads

    set_threads(args.threads)
    lines = [f"# benchmarks/gnn_profile.py --list {args.list} --threads {args.threads} --top {args.top}"
             f"{' --busy' if args.busy else ''}",
             f"# {platform.machine()}, {len(os.sched_getaffinity(0))} usable cores, Python "
             f"{platform.python_version()}, {args.threads} thread(s)", ""]
    profile, (method, event) = profile_event(args.list, args.top)
    lines += profile + [""] + edge_network_runtimes() + [""] + network_threads(method, event, args.busy)
    RESULTS.mkdir(exist_ok=True)
    name = f"gnn_profile_{args.threads}thread{'s' if args.threads > 1 else ''}{'_busy' if args.busy else ''}"
    out = RESULTS / f"{name}.txt"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

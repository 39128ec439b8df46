"""The gnn's fast paths give the results of the plain ones: numba's module map and edge features (bit for bit),
the edge filter run by onnxruntime (the same kept edges), the interaction network's inference path; and torch
takes the filter over where onnxruntime is missing."""

import sys

import numpy as np
import pytest
import torch

from deepreco.errors import DeepRecoError
from deepreco.generate import particle_gun
from deepreco.reconstruct import get_method
from deepreco.reconstruct.gnn import fast, runtime
from deepreco.reconstruct.gnn.features import _edge_features, edge_features, node_features
from deepreco.reconstruct.gnn.method import cached_model, filter_graph
from deepreco.reconstruct.gnn.model import InteractionNetwork
from deepreco.reconstruct.gnn.module_map import hit_coordinates
from deepreco.simulate import simulate_event

needs_numba = pytest.mark.skipif(not fast.HAVE_NUMBA, reason="numba is not installed (the fast extra)")
needs_ort = pytest.mark.skipif(not runtime.available(), reason="onnxruntime and onnx are not installed (serve extra)")


@pytest.fixture(scope="module")
def event():
    """600 muons over the whole detector (barrel and end caps), with noise: about 9,000 hits."""
    particles = particle_gun(n=600, pdg=[13, -13], pt=(0.5, 10.0), eta=(-3.0, 3.0), seed=7)
    return simulate_event(particles, seed=7, event_id=7, noise_fraction=0.1)


@pytest.fixture(scope="module")
def inputs(event):
    model = cached_model(None)  # the shipped model
    x = node_features(event)
    coords = hit_coordinates(event.hits[["x", "y", "z"]].to_numpy(np.float64))
    return model, x, coords, model.module_map.build(event, max_chunk=5000)


@needs_numba
def test_compiled_module_map_and_features_are_numpys_bit_for_bit(event, inputs, monkeypatch):
    model, x, coords, graph = inputs
    assert graph.shape[1] > 20_000
    monkeypatch.setattr(fast, "HAVE_NUMBA", False)
    plain = model.module_map.build(event, max_chunk=5000)
    assert np.array_equal(graph, plain)  # the same edges in the same order
    compiled = edge_features(coords, x, graph)
    assert np.array_equal(compiled, _edge_features(coords, x, graph))
    assert compiled.dtype == np.float32 and compiled.shape == (graph.shape[1], 9)


@needs_ort
def test_onnxruntime_filter_keeps_the_edges_torch_keeps(inputs):
    model, x, coords, graph = inputs
    threshold = model.filter_threshold
    by = {name: filter_graph(model, x, coords, graph, threshold, chunk=7000, runtime=name)
          for name in ("onnxruntime", "torch")}
    (e_ort, s_ort, n_ort), (e_torch, s_torch, n_torch) = by["onnxruntime"], by["torch"]
    assert n_ort == n_torch == graph.shape[1] and e_torch.shape[1] > 1000
    assert np.array_equal(e_ort, e_torch)  # no edge this close to the threshold here
    assert np.allclose(s_ort, s_torch, atol=1e-5, rtol=0)
    assert runtime.filter_session(model.filter) is runtime.filter_session(model.filter)  # made once


@needs_ort
def test_the_method_on_onnxruntime_gives_the_tracks_of_torch(event):
    tracks = {name: get_method("gnn", runtime=name).reconstruct(event) for name in ("onnxruntime", "torch")}
    assert len(tracks["torch"]) > 1000
    assert tracks["onnxruntime"].equals(tracks["torch"])


def test_without_onnxruntime_torch_runs_the_filter(event, inputs, monkeypatch):
    model, x, coords, graph = inputs
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    monkeypatch.setattr(runtime, "_SESSIONS", type(runtime._SESSIONS)())
    assert not runtime.available() and runtime.filter_session(model.filter) is None
    default = filter_graph(model, x, coords, graph, model.filter_threshold, chunk=7000)
    plain = filter_graph(model, x, coords, graph, model.filter_threshold, chunk=7000, runtime="torch")
    assert all(np.array_equal(a, b) for a, b in zip(default, plain, strict=True))
    with pytest.raises(DeepRecoError, match="needs onnxruntime and onnx: pip install"):
        filter_graph(model, x, coords, graph, model.filter_threshold, runtime="onnxruntime")
    assert len(get_method("gnn").reconstruct(event)) > 1000


def test_an_unknown_runtime_is_refused_in_one_line():
    with pytest.raises(DeepRecoError, match="gnn runtime must be one of None, onnxruntime, torch, got 'tensorrt'"):
        get_method("gnn", runtime="tensorrt")


def test_interaction_network_inference_in_chunks_is_its_training_forward():
    torch.manual_seed(0)
    net = InteractionNetwork(hidden=16, n_iterations=3)
    x, attr = torch.randn(300, 8), torch.randn(2000, 9)
    edges = torch.randint(0, 300, (2, 2000))
    whole = net(x, attr, edges)  # gradients on: the training path
    with torch.no_grad():
        chunked = net(x, attr, edges, chunk=333)
    assert torch.allclose(whole.detach(), chunked, atol=1e-5)


def test_the_shared_chunks_run_without_autograd_on_every_thread(monkeypatch):
    """torch's grad mode belongs to each thread: the pool's threads that share the network's chunks started with
    it on, and recorded every chunk's operations for a backward pass that never came."""
    from deepreco.reconstruct.gnn import model

    modes = []
    plain = model.edge_mlp
    monkeypatch.setattr(model, "edge_mlp", lambda *args: modes.append(torch.is_grad_enabled()) or plain(*args))
    torch.manual_seed(0)
    net = InteractionNetwork(hidden=16, n_iterations=2)
    x, attr = torch.randn(300, 8), torch.randn(2000, 9)
    edges = torch.randint(0, 300, (2, 2000))
    with torch.no_grad():
        one = net(x, attr, edges, chunk=250, threads=1)
        two = net(x, attr, edges, chunk=250, threads=2)
    assert torch.equal(one, two) and len(modes) == 2 * 8 * 4 and not any(modes)


def test_network_scores_are_the_same_on_any_threads_free_cores_or_not(inputs, monkeypatch):
    """classify_edges on one thread, on two with the cores free (torch's own threads, larger chunks) and on two
    with a core busy (the chunks shared between two threads): the same scores, bit for bit where the chunks are
    shared; torch's own threads may round a few of the 21,622 edges otherwise in the last bits."""
    from deepreco import threads
    from deepreco.reconstruct.gnn.method import classify_edges

    model, x, coords, graph = inputs
    edges, _, _ = filter_graph(model, x, coords, graph, model.filter_threshold, chunk=7000)
    assert edges.shape[1] > 10_000
    before = torch.get_num_threads()
    calls = []
    try:
        torch.set_num_threads(1)
        one = classify_edges(model, x, coords, edges, network_chunk=1000, free_chunk=3000)
        torch.set_num_threads(2)
        for busy in (0, 1):
            monkeypatch.setattr(threads, "busy_elsewhere", lambda busy=busy: calls.append(busy) or busy)
            two = classify_edges(model, x, coords, edges, network_chunk=1000, free_chunk=3000)
            if busy:
                assert np.array_equal(one, two)
            else:
                np.testing.assert_allclose(two, one, rtol=0, atol=1e-6)
                assert (one != two).sum() <= 10
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert calls == [0, 1]  # each path taken once

"""The graph layers' fast inference: the kNN tree against the brute force, the fused GravNet messages and the
split EdgeConv MLP against the per-edge torch code, and the shipped models' clusters the same either way."""

import numpy as np
import pytest
import torch

from deepreco.calo.models import fused
from deepreco.calo.models import knn as knn_module
from deepreco.calo.models.edgeconv import DynamicEdgeConv
from deepreco.calo.models.gravnet import GravNetConv
from deepreco.calo.models.knn import knn

torch.set_num_threads(1)
needs_numba = pytest.mark.skipif(not knn_module.HAVE_NUMBA,
                                 reason="numba is not installed: no 'tree' kNN and no fused kernels to test")


def _cloud(n_per=(300, 5, 420), dim=4, seed=0):
    """A random cloud of three graphs (one smaller than k) and its sorted batch vector, in float64 so that the
    brute force's distances are exact enough to rank."""
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.normal(size=(sum(n_per), dim)) * rng.uniform(0.2, 3.0, size=dim))
    batch = torch.repeat_interleave(torch.arange(len(n_per)), torch.tensor(n_per))
    return x, batch


@needs_numba
@pytest.mark.parametrize("dim", [2, 3, 4, 64])
def test_tree_knn_gives_the_brute_force_neighbours(dim):
    x, batch = _cloud(dim=dim, seed=dim)
    k = 16
    tree, brute = knn(x, k, batch, method="tree"), knn(x, k, batch, method="brute")
    n = len(x)
    assert tree.shape == (n, k) and tree.dtype == torch.long
    assert (tree[:, 0] == torch.arange(n)).all()  # itself first
    assert (batch[tree] == batch[:, None]).all()  # never a neighbour from another graph
    small = torch.nonzero(batch == 1).squeeze(1)  # 5 points, k = 16: all of them, then itself again
    for i, row in zip(small.tolist(), tree[small].tolist(), strict=True):
        assert set(row) == set(small.tolist()) and row[5:] == [i] * (k - 5)
    # the same neighbours, nearest first (continuous random points: no ties)
    assert torch.equal(tree.sort(1).values, brute.sort(1).values)
    d = (x[tree] - x[:, None, :]).pow(2).sum(-1)[batch != 1]  # (the small graph's rows end padded)
    assert (d[:, 1:] >= d[:, :-1]).all()
    if dim <= knn_module.KDTREE_MAX_DIM:
        assert torch.equal(tree.sort(1).values, knn(x, k, batch, method="scipy").sort(1).values)


def ranked(x: torch.Tensor, k: int) -> torch.Tensor:
    """The reference: for each point itself, then the others by (float64 squared distance summed over the
    coordinates in order, index): the rule the tree and the exported search follow."""
    p = x.double().numpy()
    n = len(p)
    d2 = np.zeros((n, n))
    for c in range(p.shape[1]):
        t = p[:, None, c] - p[None, :, c]
        d2 = d2 + t * t
    np.fill_diagonal(d2, -1.0)
    order = np.lexsort((np.broadcast_to(np.arange(n), (n, n)), d2), axis=1)
    return torch.from_numpy(order[:, :k])


def packed(n: int, dim: int, scale: float, seed: int = 0) -> torch.Tensor:
    """float32 points a few units apart, a fifth of them packed within ``scale`` of one point far from the
    centre: squared distances of scale^2 beside squared norms of 25 dim (DGCNN's and GravNet's spaces do it)."""
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, dim)) * 3.0
    pts[: n // 5] = rng.normal(size=(n // 5, dim)) * scale + 5.0
    return torch.from_numpy(pts.astype(np.float32))


def grid(dims: int = 3, side: int = 6, pad_to: int = 0) -> torch.Tensor:
    """Integer grid points (more than 8 points at equal distances from each), padded with zero coordinates to
    ``pad_to`` dimensions."""
    g = torch.stack(torch.meshgrid(*[torch.arange(float(side))] * dims, indexing="ij"), -1).reshape(-1, dims)
    return torch.cat([g, torch.zeros(len(g), max(pad_to - dims, 0))], 1)


@needs_numba
@pytest.mark.parametrize("dim", [4, 16, 64])
def test_tree_knn_is_the_ranked_reference_in_order(dim):
    """Packed points (1e-5 apart at norms of 5 sqrt(dim)) and grids: the neighbours in (distance, index) order
    exactly, in any dimension (above 8 the tree searches a rotated projection, which once ranked by the
    rotated distances and took other neighbours at near-ties)."""
    for x in (packed(1200, dim, 1e-5, seed=dim), packed(1200, dim, 1e-3, seed=dim + 1), grid(3, 6, dim)):
        for k in (8, 16):
            assert torch.equal(knn(x, k, method="tree"), ranked(x, k)), (dim, k, len(x))


@needs_numba
def test_tree_knn_on_a_grid_with_ties_and_duplicates():
    # cell centres: many neighbours at equal distances, and a repeated point; the k-th distances must agree
    g = np.stack(np.meshgrid(np.arange(12.0), np.arange(9.0), np.arange(3.0), indexing="ij"), -1).reshape(-1, 3)
    x = torch.as_tensor(np.concatenate([g, g[:7]]))
    tree, brute = knn(x, 10, method="tree"), knn(x, 10, method="brute")
    dt = (x[tree] - x[:, None, :]).pow(2).sum(-1).sort(1).values
    db = (x[brute] - x[:, None, :]).pow(2).sum(-1).sort(1).values
    assert torch.equal(dt, db)


@needs_numba
def test_two_threads_give_the_same_neighbours_and_messages():
    x, batch = _cloud(n_per=(3000, 40), dim=4, seed=7)
    x = x.float()
    conv = GravNetConv(4, 8, space_dim=4, prop_dim=6, k=12)
    with torch.no_grad():
        one_knn, one_msg = knn(x, 12, batch), conv(x, batch)
        torch.set_num_threads(2)
        try:
            two_knn, two_msg = knn(x, 12, batch), conv(x, batch)
        finally:
            torch.set_num_threads(1)
    assert torch.equal(one_knn, two_knn)
    assert torch.equal(one_msg, two_msg)


@needs_numba
def test_numbas_thread_pool_leaves_torchs_thread_count_as_it_was():
    """numba's pool, started with two threads, set the libgomp torch shares to two: torch then ran on two
    threads after a kNN whatever ``--threads`` said (a calorimeter training's losses moved in their last bits)."""
    import os
    import subprocess
    import sys

    code = ("import torch, numpy as np\ntorch.set_num_threads(1)\n"
            "from deepreco.calo.models.knn import tree_knn\n"
            "tree_knn(np.random.default_rng(0).random((200, 4)), 4)\nprint('ONE', torch.get_num_threads())\n"
            "torch.set_num_threads(2)\ntree_knn(np.random.default_rng(0).random((200, 4)), 4)\n"
            "print('TWO', torch.get_num_threads())")
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.split() == ["ONE", "1", "TWO", "2"], out.stdout + out.stderr


def test_knn_bad_input_is_a_clear_error():
    x = torch.randn(20, 3)
    with pytest.raises(ValueError, match="method"):
        knn(x, 4, method="annoy")
    with pytest.raises(ValueError, match="NaN"):
        knn(torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]), 1)
    with pytest.raises(ValueError, match="sorted"):
        knn(x, 4, torch.tensor([1] * 10 + [0] * 10))
    with pytest.raises(ValueError, match="k must"):
        knn(x, 0)
    assert knn(torch.zeros((0, 3)), 4).shape == (0, 4)


@needs_numba
def test_fused_gravnet_messages_equal_the_torch_layer(monkeypatch):
    torch.manual_seed(0)
    conv = GravNetConv(16, 24, space_dim=4, prop_dim=10, k=8)
    x, batch = _cloud(dim=16, seed=3)
    x = x.float()
    with torch.no_grad():
        fast = conv(x, batch)
        monkeypatch.setattr(fused, "usable", lambda *t: False)
        slow = conv(x, batch)
    assert torch.allclose(fast, slow, atol=1e-5, rtol=1e-5)


def test_edgeconv_split_mlp_equals_the_per_edge_mlp():
    torch.manual_seed(1)
    conv = DynamicEdgeConv(12, 20, k=6)
    x, batch = _cloud(dim=12, seed=4)
    x = x.float()
    idx = knn(x, 6, batch)
    xi = x[:, None, :].expand(-1, 6, -1)
    reference = conv.mlp(torch.cat([xi, x[idx] - xi], dim=-1)).max(dim=1).values  # the paper's form, per edge
    with torch.no_grad():
        assert torch.allclose(conv(x, batch), reference, atol=1e-5)
    out = conv(x, batch)  # with autograd: the same numbers, and a gradient
    assert torch.allclose(out, reference, atol=1e-5)
    out.sum().backward()
    assert conv.mlp[0].weight.grad is not None


@needs_numba
def test_shipped_networks_cluster_the_same_with_the_fast_and_the_old_paths(monkeypatch):
    from deepreco.calo.guns import fixed
    from deepreco.calo.methods import get_method
    from deepreco.calo.modelfile import SHIPPED
    from deepreco.calo.simulate import simulate

    if not (SHIPPED / "calo_gravnet.pt").exists():
        pytest.skip("no shipped calorimeter models")
    event = simulate(fixed([22, 211, 11, 22], [20, 30, 15, 40], [2.0, 2.1, 2.05, 1.9], [0.3, 0.4, 0.25, 0.5]), seed=7)
    fast = {name: get_method(name).reconstruct(event) for name in ("gravnet", "edgeconv")}
    monkeypatch.setattr(knn_module, "default_method", lambda: "scipy")  # the kNN as it was: cKDTree / cdist
    monkeypatch.setattr(fused, "usable", lambda *t: False)
    for name, (ht, cl) in fast.items():
        ht_old, cl_old = get_method(name).reconstruct(event)
        assert np.array_equal(ht["cluster_id"].to_numpy(), ht_old["cluster_id"].to_numpy()), name
        assert np.allclose(cl["energy"].to_numpy(), cl_old["energy"].to_numpy(), rtol=1e-4), name

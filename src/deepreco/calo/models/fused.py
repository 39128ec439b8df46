"""Inference kernels compiled with numba (optional): one pass over each hit's neighbours instead of the
(n, k, features) tensors that autograd needs. Used only when no gradient is wanted; training and machines
without numba take the torch code of the layers, which computes the same numbers (tested).
"""

from __future__ import annotations

import numpy as np
import torch

from .knn import HAVE_NUMBA, numba, use_threads


def usable(*tensors: torch.Tensor) -> bool:
    """Whether the fused kernels may stand in: numba there, CPU tensors, no gradient wanted."""
    return HAVE_NUMBA and all(t.device.type == "cpu" and not t.requires_grad for t in tensors)


def gravnet_messages(s: torch.Tensor, f: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """[mean_j V_ij f_j, max_j V_ij f_j] over the k neighbours j of each hit, V_ij = exp(-10 |s_i - s_j|^2).

    The squared distances are summed in the layer's order and exp is torch's, so that the numbers are the
    layer's bit for bit (checked for the shipped model's sizes; elsewhere within float rounding)."""
    s32 = np.ascontiguousarray(s.numpy(), dtype=np.float32)
    f32 = np.ascontiguousarray(f.numpy(), dtype=np.float32)
    idx64 = np.ascontiguousarray(idx.numpy())
    use_threads()
    v = torch.exp(-10.0 * torch.from_numpy(_squared_distances(s32, idx64)))
    return torch.from_numpy(_gravnet_messages(v.numpy(), f32, idx64))


if HAVE_NUMBA:
    @numba.njit(cache=True, nogil=True, parallel=True)
    def _squared_distances(s, idx):
        n, k = idx.shape
        out = np.empty((n, k), np.float32)
        for i in numba.prange(n):
            for a in range(k):
                j = idx[i, a]
                d2 = np.float32(0.0)
                for c in range(s.shape[1]):
                    t = s[j, c] - s[i, c]
                    d2 += t * t
                out[i, a] = d2
        return out

    @numba.njit(cache=True, nogil=True, parallel=True)
    def _gravnet_messages(v, f, idx):
        n, k = idx.shape
        p = f.shape[1]
        out = np.empty((n, 2 * p), np.float32)
        block = 1024
        for b in numba.prange((n + block - 1) // block):  # blocks of hits in parallel, each its own sums
            acc = np.empty((4, p), np.float32)
            top = np.empty(p, np.float32)
            for i in range(b * block, min(n, (b + 1) * block)):
                _one_message(v, f, idx, i, acc, top, out)
        return out

    @numba.njit(cache=True, nogil=True)
    def _one_message(v, f, idx, i, acc, top, out):
        """Hit i's mean and max message into out[i], with the scratch rows acc (4, p) and top (p)."""
        k = idx.shape[1]
        p = f.shape[1]
        acc[:] = 0
        top[:] = -np.inf
        for a in range(k):
            j = idx[i, a]
            w = v[i, a]
            r = a % 4  # four running sums, added up in order at the end: torch's order for the mean
            for c in range(p):
                m = w * f[j, c]
                acc[r, c] += m
                top[c] = max(top[c], m)
        for c in range(p):
            out[i, c] = (((acc[0, c] + acc[1, c]) + acc[2, c]) + acc[3, c]) / k
            out[i, p + c] = top[c]

"""Object condensation (Kieseler, arXiv:2002.03605): the loss and the inference.

Each hit i has beta_i in (0, 1) and coordinates x_i in a clustering space. With the charge
q_i = arctanh(beta_i)^2 + q_min and alpha_k the hit of object k with the largest charge,

    attractive_k = sum_{i in k}     q_i q_alpha_k ||x_i - x_alpha_k||^2        / N_k
    repulsive_k  = sum_{i not in k} q_i q_alpha_k max(0, 1 - ||x_i - x_alpha_k||) / (N - N_k)
    L_V    = mean_k (attractive_k + repulsive_k)
    L_beta = mean_k (1 - beta_alpha_k) + s_B mean_{noise i} beta_i

(``normalisation="object"``, the per-object averages of the ``object-condensation`` package, which the test
checks against it); ``normalisation="paper"`` is the paper's eq. 5, L_V = 1/N sum_i sum_k q_i q_alpha_k (M_ik
||.||^2 + (1 - M_ik) max(0, 1 - ||.||)). A property loss L_p = sum_i xi_i L_i / sum_i xi_i with
xi_i = arctanh(beta_i)^2 over non-noise hits weights each hit's property error by how much it condenses.

Inference: take hits by decreasing beta above t_beta; each not yet assigned becomes a condensation point
and takes every unassigned hit within t_d of it in the clustering space; then every hit joins the nearest
condensation point within t_d.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

BETA_EPS = 1e-4


def charge(beta: torch.Tensor, q_min: float) -> torch.Tensor:
    b = beta.clamp(BETA_EPS, 1 - BETA_EPS)
    return torch.atanh(b) ** 2 + q_min


def condensation_loss(beta: torch.Tensor, x: torch.Tensor, object_id: torch.Tensor, q_min: float = 0.1,
                      s_b: float = 1.0, normalisation: str = "object") -> dict[str, torch.Tensor]:
    """The terms attractive, repulsive, coward (mean_k 1 - beta_alpha) and noise (mean beta of noise hits,
    times s_B). ``object_id`` <= 0 marks noise. An event without objects gives zero potentials."""
    q = charge(beta, q_min)
    real = object_id > 0
    zero = beta.sum() * 0.0
    noise = beta[~real].mean() * s_b if (~real).any() else zero
    if not real.any():
        return {"attractive": zero, "repulsive": zero, "coward": zero, "noise": noise}
    ids = torch.unique(object_id[real])
    member = object_id[:, None] == ids[None, :]                      # (N, K)
    alpha = torch.argmax(q[:, None] * member, dim=0)                  # (K,)
    dist = torch.cdist(x, x[alpha])                                   # (N, K)
    qq = q[:, None] * q[alpha][None, :]
    att = qq * member * dist.pow(2)
    rep = qq * (~member) * torch.relu(1 - dist)
    if normalisation == "object":
        n_k = member.sum(0)
        attractive = (att.sum(0) / n_k.clamp(min=1)).mean()
        repulsive = (rep.sum(0) / (len(beta) - n_k).clamp(min=1)).mean()
    elif normalisation == "paper":
        attractive = att.sum() / len(beta)
        repulsive = rep.sum() / len(beta)
    else:
        raise ValueError(f"normalisation must be 'object' or 'paper', got {normalisation!r}")
    return {"attractive": attractive, "repulsive": repulsive, "coward": (1 - beta[alpha]).mean(), "noise": noise}


def property_weights(beta: torch.Tensor, object_id: torch.Tensor) -> torch.Tensor:
    """xi_i = arctanh(beta_i)^2 on non-noise hits, 0 on noise."""
    return torch.atanh(beta.clamp(BETA_EPS, 1 - BETA_EPS)) ** 2 * (object_id > 0)


def condense(beta: np.ndarray, coords: np.ndarray, t_beta: float = 0.3, t_d: float = 0.5, nearest: bool = True
             ) -> tuple[np.ndarray, np.ndarray]:
    """Cluster label per hit (-1: none) and the index of each cluster's condensation point.

    The condensation points are chosen greedily as in the paper; with ``nearest`` each hit then joins the
    nearest of them within t_d (measured: better energy resolution where showers touch).

    >>> b = np.array([0.9, 0.1, 0.8, 0.05]); x = np.array([[0., 0], [0.2, 0], [3, 3], [9, 9]])
    >>> condense(b, x)[0].tolist()
    [0, 0, 1, -1]
    """
    beta = np.asarray(beta, dtype=np.float64)
    coords = np.asarray(coords, dtype=np.float64)
    labels = np.full(len(beta), -1, dtype=np.int64)
    cand = np.flatnonzero(beta > t_beta)
    if len(cand) == 0:
        return labels, np.zeros(0, dtype=np.int64)
    cand = cand[np.argsort(-beta[cand], kind="stable")]
    tree = cKDTree(coords)
    # all neighbourhoods of the candidates at once; the greedy pass below is over candidates only
    hoods = tree.query_ball_point(coords[cand], t_d)
    alphas = []
    for c, hood in zip(cand, hoods, strict=True):
        if labels[c] >= 0:
            continue
        hood = np.asarray(hood, dtype=np.int64)
        free = hood[labels[hood] < 0]
        labels[free] = len(alphas)
        labels[c] = len(alphas)
        alphas.append(c)
    alphas = np.asarray(alphas, dtype=np.int64)
    if nearest and len(alphas) > 1:
        # a hit within t_d of two condensation points goes to the nearer one, not to the one with higher beta
        dist, which = cKDTree(coords[alphas]).query(coords, k=1, distance_upper_bound=t_d)
        labels = np.where(np.isfinite(dist), which, -1)
        labels[alphas] = np.arange(len(alphas))
    return labels, alphas

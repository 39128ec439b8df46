"""The two losses of the seed: a softmax cross-entropy per plane, and the Gaussian log-likelihood.

Per-plane cross-entropy (the hit classifiers, HEP.TrkX's Keras ``categorical_crossentropy`` over a
time-distributed softmax): with ``z_t`` a plane's P logits and ``k_t`` the signal track's pixel,

    L = mean over (event, plane) of  -log softmax(z_t)[k_t]

Gaussian log-likelihood (the track-parameter model): with residual ``r = y - f(x)`` and the predicted
covariance ``Sigma``,

    L(x, y) = log |Sigma| + r^T Sigma^-1 r

(-2 log of the Gaussian density, constant dropped). For 2 parameters ``Sigma`` is built, as HEP.TrkX's
``covariance_from_network_params`` does, from three free numbers: ``var_1 = exp(a)``, ``var_2 = exp(b)``,
``rho = tanh(c)``, ``Sigma_12 = rho sqrt(var_1 var_2)``; so it is positive definite for any network output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["covariance_from_outputs", "gaussian_nll", "plane_cross_entropy"]


def plane_cross_entropy(logits: torch.Tensor, target_index: torch.Tensor, planes: slice = slice(None)) -> torch.Tensor:
    """Mean cross-entropy of (B, L, P) logits against (B, L) signal pixel indices, over the given planes."""
    z, k = logits[:, planes], target_index[:, planes]
    return F.cross_entropy(z.reshape(-1, z.shape[-1]), k.reshape(-1))


def covariance_from_outputs(raw: torch.Tensor) -> torch.Tensor:
    """(..., 3) network outputs (log var_1, log var_2, atanh rho) -> (..., 2, 2) covariance matrices."""
    var1, var2 = raw[..., 0].exp(), raw[..., 1].exp()
    cov12 = torch.tanh(raw[..., 2]) * torch.sqrt(var1 * var2)
    return torch.stack([torch.stack([var1, cov12], -1), torch.stack([cov12, var2], -1)], -2)


def gaussian_nll(residual: torch.Tensor, raw_cov: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``log|Sigma| + r^T Sigma^-1 r`` over the (masked) tracks; residual (..., 2), raw_cov (..., 3).

    Written out for 2 x 2 matrices: ``|Sigma| = var_1 var_2 (1 - rho^2)`` and
    ``r^T Sigma^-1 r = (r_1^2/var_1 - 2 rho r_1 r_2/sqrt(var_1 var_2) + r_2^2/var_2) / (1 - rho^2)``, which is
    stabler than a general inverse when rho nears +-1.
    """
    log_v1, log_v2, rho = raw_cov[..., 0], raw_cov[..., 1], torch.tanh(raw_cov[..., 2])
    one_m_rho2 = (1 - rho**2).clamp_min(1e-6)
    u1 = residual[..., 0] * torch.exp(-0.5 * log_v1)
    u2 = residual[..., 1] * torch.exp(-0.5 * log_v2)
    quad = (u1**2 - 2 * rho * u1 * u2 + u2**2) / one_m_rho2
    loss = log_v1 + log_v2 + torch.log(one_m_rho2) + quad
    if mask is None:
        return loss.mean()
    mask = mask.to(loss.dtype)
    return (loss * mask).sum() / mask.sum().clamp_min(1)

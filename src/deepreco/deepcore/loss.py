"""DeepCore's loss (seed 000): weighted binary cross-entropy on the crossing flags + clipped squared error.

With y the TCP flag and p the predicted probability of each (pixel, overlap), N = B x 3 x 30 x 30 of them,
and a weight w = 10 on TCP, 1 on NCP, 0.01 elsewhere:

    L_BCE = -(1 / N) sum_i w_i [y_i ln p_i + (1 - y_i) ln(1 - p_i)]

and over the (pixel, overlap) slots holding a TCP or NCP target (N_TCP+NCP of them), each with 5 parameters:

    L_MSE = sum_{slots in TCP, NCP} sum_{k=1..5} min[(P_k - T_k)^2, 25] / (5 N_TCP+NCP)

The total is L_BCE + L_MSE ("same weight"). BCE is computed from the logits (same value, no overflow). The
seed's "new loss", its last training phase, is the BCE with weight 0 outside the TCP and NCP pixels
(``other_weight=0``): the network then learns only where tracks cross, not the empty rest of the window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["CLIP", "WEIGHTS", "deepcore_loss"]

WEIGHTS = {"tcp": 10.0, "ncp": 1.0, "other": 0.01}
CLIP = 25.0


def deepcore_loss(logits: torch.Tensor, params: torch.Tensor, flags: torch.Tensor, kinds: torch.Tensor,
                  target_params: torch.Tensor, other_weight: float | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, bce, mse). kinds: 2 TCP, 1 NCP, 0 other, shaped like the logits (B, 3, 30, 30); ``other_weight``
    replaces the BCE weight of the other pixels (0: the new loss)."""
    weight = torch.full_like(logits, WEIGHTS["other"] if other_weight is None else float(other_weight))
    weight = torch.where(kinds == 1, WEIGHTS["ncp"], weight)
    weight = torch.where(kinds == 2, WEIGHTS["tcp"], weight)
    bce = F.binary_cross_entropy_with_logits(logits, flags, weight=weight, reduction="mean")
    on = (kinds > 0).unsqueeze(2).expand_as(params)
    sq = torch.clamp((params - target_params) ** 2, max=CLIP)
    mse = (sq * on).sum() / on.sum().clamp(min=1)
    return bce + mse, bce, mse

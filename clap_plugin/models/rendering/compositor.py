"""Compositing of per-interval opacities along rays into range, colour and accumulated opacity.

T_n = prod_{i<n} (1 - alpha_i), w_n = T_n alpha_n. The interval [t_n, t_{n+1}] contributes its mid-point
range and the mean colour of its end points: range = sum_n w_n (t_n + t_{n+1}) / 2, colour likewise; the
residual transmittance (1 - sum w) renders the background (range ``far``, a constant colour).
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor


@dataclass
class Composite:
    """Composited rays: ``range`` (R,), ``rgb`` (R, 3) (zeros without colours), ``acc`` (R,) = sum of the
    weights, ``weights`` (R, M-1)."""
    range: Tensor
    rgb: Tensor
    acc: Tensor
    weights: Tensor


def alpha_to_weights(alpha: Tensor) -> Tensor:
    """(R, K) opacities -> (R, K) weights T_n alpha_n (non-negative, sum <= 1)."""
    ones = torch.ones_like(alpha[:, :1])
    trans = torch.cumprod(torch.cat([ones, 1.0 - alpha], dim=-1), dim=-1)[:, :-1]
    return (trans * alpha).clamp(min=0.0)


def composite(alpha: Tensor, t: Tensor, far: Tensor, rgb: Optional[Tensor] = None,
              background_color: Optional[Sequence[float]] = (0.0, 0.0, 0.0)) -> Composite:
    """Composite R rays.

    Args:
        alpha: (R, M-1) interval opacities.
        t: (R, M) sorted sample distances.
        far: (R,) background range.
        rgb: optional (R, M, 3) sample colours.
        background_color: colour of the residual transmittance; None: no background term (range and colour).
    """
    r = t.shape[0]
    weights = alpha_to_weights(alpha)  # (R, M-1)
    mid_t = 0.5 * (t[:, :-1] + t[:, 1:])
    acc = weights.sum(dim=-1)
    rng = (weights * mid_t).sum(dim=-1)
    if rgb is not None:
        mid_rgb = 0.5 * (rgb[:, :-1] + rgb[:, 1:])
        col = (weights[..., None] * mid_rgb).sum(dim=1)
    else:
        col = weights.new_zeros(r, 3)
    if background_color is not None:
        rest = (1.0 - acc).clamp(min=0.0)
        rng = rng + rest * far
        if rgb is not None and any(c != 0.0 for c in background_color):  # Python scalars: no H2D copy
            col = col + torch.stack([rest * float(c) for c in background_color], dim=-1)
    return Composite(range=rng, rgb=col, acc=acc, weights=weights)

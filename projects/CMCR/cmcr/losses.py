"""CMCR's modality-specific tasks and the shared/specific decorrelation."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def occupancy_queries(points: Tensor, origin: Tensor, num_queries: int, max_offset: float,
                      generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
    """Query points near the surface seen by LiDAR, with occupancy targets.

    For a return ``p`` of a ray from ``origin`` with unit direction ``d``, the query ``q = p + t d`` with
    ``t ~ U(-max_offset, max_offset)`` is free (0) in front of the surface (``t < 0``: the beam went through) and
    occupied (1) behind it (``t >= 0``: inside the hit object, within ``max_offset`` of its surface).

    Args:
        points: (P, 3) LiDAR returns; origin: (3,) sensor position (same frame).

    Returns:
        ``queries`` (Q, 3), ``targets`` (Q,) float in {0, 1}, ``offsets`` (Q,), ``point_idx`` (Q,).
    """
    if points.shape[0] == 0:
        raise ValueError('occupancy_queries needs at least one point')
    if max_offset <= 0:
        raise ValueError(f'max_offset must be > 0, got {max_offset}')
    idx = torch.randint(0, points.shape[0], (int(num_queries), ), generator=generator, device='cpu').to(
        points.device)
    p = points[idx, :3]
    d = p - origin.to(p.dtype)
    d = d / d.norm(dim=1, keepdim=True).clamp(min=1e-6)
    t = (torch.rand(int(num_queries), generator=generator, device='cpu').to(p.device, p.dtype) * 2 - 1) * max_offset
    return dict(queries=p + t[:, None] * d, targets=(t >= 0).to(p.dtype), offsets=t, point_idx=idx)


def masked_patch_loss(pred: Tensor, target: Tensor, patch_mask: Tensor, patch_size: int) -> Tensor:
    """Mean squared error over the pixels of the masked patches only.

    Args:
        pred, target: (N, 3, H, W) images; patch_mask: (N, ceil(H/p), ceil(W/p)) True where masked.
    """
    h, w = pred.shape[-2:]
    pix = patch_mask.repeat_interleave(patch_size, -2).repeat_interleave(patch_size, -1)[..., :h, :w]
    pix = pix[:, None].expand_as(pred).to(pred.dtype)
    if pix.sum() == 0:
        raise ValueError('masked_patch_loss: no patch is masked')
    return ((pred - target).pow(2) * pix).sum() / pix.sum()


def decorrelation_loss(shared: Tensor, specific: Tensor, eps: float = 1e-5) -> Tensor:
    """Mean squared cross-correlation between the (batch-standardised) shared and specific features:
    0 when every shared channel is uncorrelated with every specific channel."""
    if shared.shape[0] != specific.shape[0] or shared.shape[0] < 2:
        raise ValueError(f'need the same N >= 2 rows, got {tuple(shared.shape)} and {tuple(specific.shape)}')
    a = (shared - shared.mean(0)) / (shared.std(0) + eps)
    b = (specific - specific.mean(0)) / (specific.std(0) + eps)
    corr = a.t() @ b / (shared.shape[0] - 1)
    return corr.pow(2).mean()


def code_matching_loss(dist_p: torch.Tensor, dist_x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """CMCR's cross-modal code matching: InfoNCE over pairs of soft code distributions.

    ``dist_p``, ``dist_x`` (N, K): distances of the paired point and pixel features to the K codes.
    ``P = softmax(-dist_p)``, ``V = softmax(-dist_x)``; the similarity of point i and pixel j is
    ``S_ij = sum_k P_ik log V_jk + V_ik log P_jk``; cross-entropy of ``S / temperature`` with target j = i.
    """
    if dist_p.shape != dist_x.shape or dist_p.dim() != 2 or dist_p.shape[0] < 2:
        raise ValueError(f'need two (N >= 2, K) distance matrices, got {tuple(dist_p.shape)} and '
                         f'{tuple(dist_x.shape)}')
    log_p, log_v = F.log_softmax(-dist_p, dim=1), F.log_softmax(-dist_x, dim=1)
    sim = log_p.exp() @ log_v.t() + log_v.exp() @ log_p.t()
    return F.cross_entropy(sim / temperature, torch.arange(sim.shape[0], device=sim.device))


def cross_commitment_loss(p: torch.Tensor, x: torch.Tensor, code_p: torch.Tensor,
                          code_x: torch.Tensor) -> torch.Tensor:
    """CMCR's commitment with cross terms: ``2 ||p - sg e(p)||^2 + ||p - sg e(x)||^2`` plus the same for ``x``
    (mean over pairs and channels), ``e(.)`` the nearest code."""
    cp, cx = code_p.detach(), code_x.detach()
    return (2 * F.mse_loss(p, cp) + F.mse_loss(p, cx) + 2 * F.mse_loss(x, cx) + F.mse_loss(x, cp))

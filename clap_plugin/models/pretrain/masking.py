"""Masking of both modalities for pre-training (CLAP, arXiv 2412.03059; per-modality scheme as in UniPAD):
LiDAR BEV blocks and image patches."""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor


def lidar_block_ids(xy: Tensor, point_cloud_range: Sequence[float], block_size: Sequence[float]) -> Tensor:
    """Integer id (P,) of the BEV block (``block_size`` metres in x and y, all heights) of each point."""
    x0, y0 = float(point_cloud_range[0]), float(point_cloud_range[1])
    nx = int(round((float(point_cloud_range[3]) - x0) / float(block_size[0]))) + 1
    ix = torch.floor((xy[:, 0] - x0) / float(block_size[0])).long()
    iy = torch.floor((xy[:, 1] - y0) / float(block_size[1])).long()
    return iy * nx + ix


def mask_lidar_blocks(points: Tensor, point_cloud_range: Sequence[float], block_size: Sequence[float],
                      ratio: float, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """Drop the points of a random ``ratio`` of the occupied BEV blocks (no mask token).

    Args:
        points: (P, C) points, x and y in the first two columns.
        ratio: share of occupied blocks removed, in [0, 1).

    Returns:
        kept points (P', C) and the keep mask (P,).
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f'LiDAR mask ratio must be in [0, 1), got {ratio}')
    if ratio == 0.0 or points.shape[0] == 0:
        return points, torch.ones(points.shape[0], dtype=torch.bool, device=points.device)
    ids = lidar_block_ids(points[:, :2], point_cloud_range, block_size)
    uniq, inverse = torch.unique(ids, return_inverse=True)
    num_masked = int(round(ratio * uniq.numel()))
    order = torch.randperm(uniq.numel(), generator=generator, device='cpu').to(points.device)
    block_masked = torch.zeros(uniq.numel(), dtype=torch.bool, device=points.device)
    block_masked[order[:num_masked]] = True
    keep = ~block_masked[inverse]
    return points[keep], keep


def mask_image_patches(imgs: Tensor, patch_size: int, ratio: float,
                       generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """Zero a random ``ratio`` of the ``patch_size`` x ``patch_size`` patches of every image.

    Args:
        imgs: (..., 3, H, W) normalised images.

    Returns:
        masked images (same shape) and the patch mask (..., ceil(H/p), ceil(W/p)), True where zeroed.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f'camera mask ratio must be in [0, 1), got {ratio}')
    if patch_size < 1:
        raise ValueError(f'patch_size must be >= 1, got {patch_size}')
    h, w = imgs.shape[-2:]
    gh, gw = -(-h // patch_size), -(-w // patch_size)
    lead = imgs.shape[:-3]
    n = int(torch.tensor(lead).prod()) if len(lead) else 1
    num_masked = int(round(ratio * gh * gw))
    scores = torch.rand(n, gh * gw, generator=generator, device='cpu')
    masked = torch.zeros(n, gh * gw, dtype=torch.bool)
    if num_masked > 0:
        masked.scatter_(1, scores.argsort(dim=1)[:, :num_masked], True)
    masked = masked.view(*lead, gh, gw).to(imgs.device)
    pixel_mask = masked.repeat_interleave(patch_size, -2).repeat_interleave(patch_size, -1)[..., :h, :w]
    return imgs.masked_fill(pixel_mask.unsqueeze(-3), 0.0), masked

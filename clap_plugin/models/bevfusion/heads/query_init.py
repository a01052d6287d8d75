"""Heatmap-based query initialisation: BEV cell grid, local-maximum suppression, top-K proposals.

BEV maps follow BEVFusion's layout ``(B, C, X, Y)``: the first spatial axis indexes x, the second y, and a
flattened index is ``ix * Y + iy``.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def bev_cell_centers(x_size: int, y_size: int, device=None, dtype=torch.float32) -> Tensor:
    """Centres of the BEV cells in cell units.

    Returns:
        (1, x_size * y_size, 2) with ``[ix + 0.5, iy + 0.5]`` at flat index ``ix * y_size + iy``.
    """
    xs = torch.arange(x_size, device=device, dtype=dtype) + 0.5
    ys = torch.arange(y_size, device=device, dtype=dtype) + 0.5
    gx, gy = torch.meshgrid(xs, ys, indexing='ij')
    return torch.stack([gx, gy], dim=-1).reshape(1, -1, 2)


def keep_local_maxima(heatmap: Tensor, kernel_size: int,
                      exempt_classes: Sequence[int] = ()) -> Tensor:
    """Zero every heatmap value that is not the maximum of its ``kernel_size`` neighbourhood.

    As in BEVFusion, cells closer than ``kernel_size // 2`` to the map edge have no full
    neighbourhood and are zeroed too (so a checkpoint proposes the same queries here and upstream).

    Args:
        heatmap: (B, C, X, Y) scores.
        kernel_size: odd neighbourhood size (1 keeps everything).
        exempt_classes: classes left unsuppressed (small objects such as pedestrians, cones).

    Returns:
        (B, C, X, Y) heatmap with non-maxima set to 0.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'nms_kernel_size must be a positive odd number, got {kernel_size}')
    if kernel_size == 1:
        return heatmap
    pad = kernel_size // 2
    inner_max = F.max_pool2d(heatmap, kernel_size=kernel_size, stride=1, padding=0)
    keep = torch.zeros_like(heatmap, dtype=torch.bool)
    keep[:, :, pad:-pad, pad:-pad] = heatmap[:, :, pad:-pad, pad:-pad] == inner_max
    for cls in exempt_classes:
        if cls < heatmap.shape[1]:
            keep[:, cls] = True
    return heatmap * keep


def top_proposals(heatmap: Tensor, num_proposals: int) -> Tuple[Tensor, Tensor]:
    """Indices of the ``num_proposals`` highest scores over all classes and cells.

    Args:
        heatmap: (B, C, N) scores, N flattened cells.
        num_proposals: K.

    Returns:
        classes (B, K) and cell indices (B, K), best first.
    """
    b, c, n = heatmap.shape
    if num_proposals > c * n:
        raise ValueError(f'num_proposals={num_proposals} exceeds classes x cells = {c * n}')
    flat_idx = heatmap.reshape(b, -1).topk(num_proposals, dim=-1).indices
    return torch.div(flat_idx, n, rounding_mode='floor'), flat_idx % n

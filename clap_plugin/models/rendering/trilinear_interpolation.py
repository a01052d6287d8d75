"""Trilinear interpolation of a feature volume that autograd can differentiate twice.

``F.grid_sample`` in 3D has no double backward, but the normal of the SDF (first derivative) enters the
colour MLP and the curvature (derivative of the unit normal), so both need a second derivative through the
interpolation. Here the interpolation is a row gather of the 8 cell corners from a channels-last table and
a batched product with the corner weights (products of the fractional coordinates), which autograd
differentiates to any order.

Conventions equal ``F.grid_sample(..., mode='bilinear', padding_mode='border', align_corners=False)``:
the volume ``(B, C, Z, H, W)`` spans the box with cell-centred samples; grid coordinates are in [-1, 1]
ordered (x, y, z) -> (W, H, Z); points outside the box read the border values.
"""
import torch
from torch import Tensor


def volume_to_table(volume: Tensor) -> Tensor:
    """(B, C, Z, H, W) volume -> (B, Z, H, W, C) channels-last copy used by :func:`trilinear_from_table`."""
    if volume.dim() != 5:
        raise ValueError(f'volume must be (B, C, Z, H, W), got shape {tuple(volume.shape)}')
    return volume.permute(0, 2, 3, 4, 1).contiguous()


def trilinear_from_table(table: Tensor, grid: Tensor) -> Tensor:
    """Sample a channels-last volume ``table`` (B, Z, H, W, C) at ``grid`` (B, N, 3) -> (B, N, C)."""
    if table.dim() != 5:
        raise ValueError(f'table must be (B, Z, H, W, C), got shape {tuple(table.shape)}')
    if grid.dim() != 3 or grid.shape[-1] != 3 or grid.shape[0] != table.shape[0]:
        raise ValueError(f'grid must be (B, N, 3) with B={table.shape[0]}, got shape {tuple(grid.shape)}')
    b, z, h, w, c = table.shape
    n = grid.shape[1]
    # Per-axis arithmetic with Python-scalar bounds: no small host -> device tensor (a stream sync on CUDA)
    # per call. align_corners=False: index = ((g + 1) * size - 1) / 2, then border clamp.
    corners, fracs = [], []
    for axis, size in enumerate((w, h, z)):
        idx = (((grid[..., axis] + 1.0) * size - 1.0) * 0.5).clamp(min=0.0, max=float(size - 1))
        base = torch.floor(idx.detach()).clamp(max=float(max(size - 2, 0)))  # keep base + 1 inside
        fracs.append(idx - base)  # (B, N), carries the gradient
        base = base.long()
        corners.append(torch.stack([base, (base + 1).clamp(max=size - 1)], dim=-1))  # (B, N, 2)
    ix, iy, iz = corners
    frac = torch.stack(fracs, dim=-1)  # (B, N, 3)
    # corner order (dx, dy, dz) in {0,1}^3, dx slowest
    lin = (iz[..., None, None, :] * h + iy[..., None, :, None]) * w + ix[..., :, None, None]  # (B, N, 2, 2, 2)
    if b > 1:
        lin = lin + torch.arange(b, device=grid.device).view(b, 1, 1, 1, 1) * (z * h * w)
    wx = torch.stack([1.0 - frac[..., 0], frac[..., 0]], dim=-1)
    wy = torch.stack([1.0 - frac[..., 1], frac[..., 1]], dim=-1)
    wz = torch.stack([1.0 - frac[..., 2], frac[..., 2]], dim=-1)
    weights = wx[..., :, None, None] * wy[..., None, :, None] * wz[..., None, None, :]  # (B, N, 2, 2, 2)
    vals = table.reshape(b * z * h * w, c).index_select(0, lin.reshape(-1)).view(b * n, 8, c)
    return (weights.reshape(b * n, 8, 1) * vals).sum(dim=1).view(b, n, c)


def trilinear_interpolate(volume: Tensor, grid: Tensor) -> Tensor:
    """Sample ``volume`` at normalised grid coordinates.

    Args:
        volume: (B, C, Z, H, W) features.
        grid: (B, N, 3) coordinates in [-1, 1], order (x, y, z) -> (W, H, Z) like ``grid_sample``.

    Returns:
        (B, N, C) interpolated features, differentiable (twice) w.r.t. ``volume`` and ``grid``.
    """
    return trilinear_from_table(volume_to_table(volume), grid)

"""BEV pooling in plain PyTorch: sum the features of frustum points that fall into the same BEV cell.

BEVFusion's ``bev_pool`` is a CUDA kernel; this version is a scatter-add (``Tensor.index_add_``) and runs on
any device with autograd. Cells are addressed by integer coordinates ``(batch, x, y, z)``; points whose
coordinates lie outside the grid are dropped (they are added into a spare row that is discarded, so the
feature tensor is never copied for masking).
"""
from typing import Sequence

import torch
from torch import Tensor


def _check_inputs(feats: Tensor, coords: Tensor, batch_size: int, grid_size: Sequence[int]) -> None:
    if feats.dim() != 2:
        raise ValueError(f'bev_pool: feats must be (N, C), got shape {tuple(feats.shape)}')
    if coords.dim() != 2 or coords.shape[1] != 4 or coords.shape[0] != feats.shape[0]:
        raise ValueError(f'bev_pool: coords must be (N, 4) = (batch, x, y, z) with N={feats.shape[0]}, '
                         f'got shape {tuple(coords.shape)}')
    if coords.dtype.is_floating_point:
        raise TypeError(f'bev_pool: coords must be an integer tensor, got {coords.dtype}')
    if len(grid_size) != 3 or min(int(g) for g in grid_size) <= 0:
        raise ValueError(f'bev_pool: grid_size must be three positive ints (X, Y, Z), got {grid_size}')
    if batch_size <= 0:
        raise ValueError(f'bev_pool: batch_size must be positive, got {batch_size}')


def bev_pool(feats: Tensor, coords: Tensor, batch_size: int, grid_size: Sequence[int]) -> Tensor:
    """Sum point features into a dense BEV grid.

    Args:
        feats: (N, C) point features.
        coords: (N, 4) integer cell coordinates in the order (batch, x, y, z). Rows with any coordinate
            outside ``[0, batch_size) x [0, X) x [0, Y) x [0, Z)`` are ignored.
        batch_size: B.
        grid_size: (X, Y, Z) number of cells along each axis.

    Returns:
        (B, C, Z, X, Y) tensor; cell ``[b, :, z, x, y]`` is the sum of the features of the points with
        coordinates ``(b, x, y, z)`` (zero for an empty cell). Differentiable w.r.t. ``feats``.
    """
    _check_inputs(feats, coords, batch_size, grid_size)
    nx, ny, nz = (int(g) for g in grid_size)
    num_cells = batch_size * nz * nx * ny
    coords = coords.long()
    b, x, y, z = coords.unbind(dim=1)
    inside = ((b >= 0) & (b < batch_size) & (x >= 0) & (x < nx) & (y >= 0) & (y < ny) & (z >= 0) & (z < nz))
    # flat index in (B, Z, X, Y) order; everything outside goes to the spare row ``num_cells``
    flat = ((b * nz + z) * nx + x) * ny + y
    flat = torch.where(inside, flat, torch.full_like(flat, num_cells))
    out = feats.new_zeros(num_cells + 1, feats.shape[1])
    out = out.index_add(0, flat, feats)
    out = out[:num_cells].view(batch_size, nz, nx, ny, feats.shape[1])
    return out.permute(0, 4, 1, 2, 3).contiguous()


def bev_pool_reference(feats: Tensor, coords: Tensor, batch_size: int, grid_size: Sequence[int]) -> Tensor:
    """Naive loop reference of :func:`bev_pool` (one Python iteration per point); for tests and benchmarks.

    Same arguments and result as :func:`bev_pool`.
    """
    _check_inputs(feats, coords, batch_size, grid_size)
    nx, ny, nz = (int(g) for g in grid_size)
    out = feats.new_zeros(batch_size, feats.shape[1], nz, nx, ny)
    for i, (b, x, y, z) in enumerate(coords.tolist()):
        if 0 <= b < batch_size and 0 <= x < nx and 0 <= y < ny and 0 <= z < nz:
            out[b, :, z, x, y] += feats[i]
    return out

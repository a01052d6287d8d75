"""Point-pixel pairs of pixel-to-point contrastive pre-training (projects/PPKT, SimIPU, CMCR).

* :func:`point_pixel_pairs`: back-projection pairs, i.e. every (point, camera) where a LiDAR point of the
  augmented LiDAR frame projects in front of the camera and inside the augmented image, with its pixel.
* :func:`subsample`: a random subset of the pairs.
* :func:`bev_cell_index` / :func:`one_per_group`: one pair per (BEV cell, camera).
"""
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor

from clap_plugin.models.geometry.projection import project_points


def point_pixel_pairs(points: Tensor, proj: Tensor, img_shape: Sequence[int],
                      min_depth: float = 1e-3) -> Dict[str, Tensor]:
    """All (point, camera) pairs where a point projects into an image.

    Args:
        points: (P, 3) points in the augmented LiDAR frame.
        proj: (N_cam, 4, 4) augmented LiDAR -> (u d, v d, d, 1) of the augmented image
            (:func:`clap_plugin.models.geometry.pixel_projection`).
        img_shape: (H, W) of the images.

    Returns:
        ``point_idx`` (M,), ``cam_idx`` (M,), ``uv`` (M, 2) continuous pixel coordinates (u right, v down) and
        ``depth`` (M,), camera-major.
    """
    if points.dim() != 2 or points.shape[1] < 3:
        raise ValueError(f'points must be (P, >=3), got {tuple(points.shape)}')
    if proj.dim() != 3 or proj.shape[1:] != (4, 4):
        raise ValueError(f'proj must be (N_cam, 4, 4), got {tuple(proj.shape)}')
    uv, depth, valid = project_points(points, proj, img_shape, min_depth)  # (N_cam, P, 2), (N_cam, P) x 2
    cam_idx, point_idx = valid.nonzero(as_tuple=True)
    return dict(point_idx=point_idx, cam_idx=cam_idx, uv=uv[cam_idx, point_idx], depth=depth[cam_idx, point_idx])


def subsample(n: int, k: int, device, generator=None) -> Tensor:
    """Indices of ``min(n, k)`` of ``n`` items drawn without replacement."""
    if n <= k:
        return torch.arange(n, device=device)
    return torch.randperm(n, generator=generator, device='cpu')[:k].to(device)


def bev_cell_index(xy: Tensor, point_cloud_range: Sequence[float], bev_shape: Sequence[int]) -> Tensor:
    """(P,) flat index ``ix * Y + iy`` of the (X, Y) BEV cell holding each point (P, 2) (x, y), clamped to the
    grid (cell i spans ``[x0 + i s, x0 + (i + 1) s)``, as :func:`sample_bev_at_points`)."""
    x0, y0, _, x1, y1, _ = [float(v) for v in point_cloud_range]
    nx, ny = int(bev_shape[0]), int(bev_shape[1])
    ix = ((xy[:, 0] - x0) / ((x1 - x0) / nx)).floor().long().clamp(0, nx - 1)
    iy = ((xy[:, 1] - y0) / ((y1 - y0) / ny)).floor().long().clamp(0, ny - 1)
    return ix * ny + iy


def one_per_group(keys: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Indices of one uniformly drawn member of every group of equal ``keys`` (N,), in group-key order."""
    n = keys.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=keys.device)
    perm = torch.randperm(n, generator=generator, device='cpu').to(keys.device)
    _, inverse = torch.unique(keys[perm], return_inverse=True)
    first = torch.full((int(inverse.max()) + 1, ), n, dtype=torch.long, device=keys.device)
    first = first.scatter_reduce(0, inverse, torch.arange(n, device=keys.device), reduce='amin')
    return perm[first]

"""Rays and their targets from a batch, in the augmented LiDAR frame (CLAP, arXiv 2412.03059).

LiDAR rays start at the LiDAR origin and pass through sampled points (target: the range). Camera rays start
at each camera centre and pass through sampled pixels of the augmented image (targets: the pixel RGB, and the
range where a LiDAR point projects into that pixel).
"""
from typing import Dict

import torch
from torch import Tensor

from ..geometry.projection import flat_pixel_index, project_points
from ..rendering.ray_batch import RayBatch


def lidar_rays(points: Tensor, origin: Tensor) -> RayBatch:
    """Rays from ``origin`` (3,) through ``points`` (N, 3) with their range targets (no colour targets)."""
    delta = points - origin
    rng = delta.norm(dim=-1)
    n = points.shape[0]
    return RayBatch(origins=origin.expand(n, 3).contiguous(), directions=delta / rng.clamp(min=1e-6)[:, None],
                    range=rng, range_mask=rng > 1e-3, rgb=points.new_zeros(n, 3),
                    rgb_mask=torch.zeros(n, dtype=torch.bool, device=points.device))


def camera_rays(proj: Tensor, pixels: Tensor) -> Dict[str, Tensor]:
    """Camera centres and unit directions of pixel rays.

    Args:
        proj: (N_cam, 4, 4) augmented-LiDAR -> pixel projection (see :func:`pixel_projection`).
        pixels: (N_cam, R, 2) continuous (u, v) pixel coordinates.

    Returns:
        ``origins``, ``directions`` (N_cam, R, 3) and ``range_per_depth`` (N_cam, R): ray length per unit of
        camera depth along each ray.
    """
    inv = torch.inverse(proj)  # (N_cam, 4, 4)
    centre = inv[:, :3, 3] / inv[:, 3:4, 3]  # image of (0, 0, 0, 1): depth 0
    n_cam, r, _ = pixels.shape
    hom = torch.cat([pixels, torch.ones(n_cam, r, 2, dtype=pixels.dtype, device=pixels.device)], -1)  # depth 1
    at_depth1 = torch.einsum('cij,crj->cri', inv, hom)
    at_depth1 = at_depth1[..., :3] / at_depth1[..., 3:4]
    delta = at_depth1 - centre[:, None]
    length = delta.norm(dim=-1)
    return dict(origins=centre[:, None].expand(n_cam, r, 3), directions=delta / length.clamp(min=1e-9)[..., None],
                range_per_depth=length)


def sparse_depth(points: Tensor, proj: Tensor, img_shape) -> Tensor:
    """Nearest LiDAR depth per pixel (N_cam, H, W), ``inf`` where no point projects."""
    h, w = int(img_shape[0]), int(img_shape[1])
    uv, depth, valid = project_points(points, proj, img_shape)
    n_cam = proj.shape[0]
    lin = flat_pixel_index(uv, img_shape)
    out = torch.full((n_cam * h * w, ), float('inf'), dtype=points.dtype, device=points.device)
    out.scatter_reduce_(0, lin[valid], depth[valid], reduce='amin')
    return out.view(n_cam, h, w)


def gather_pixels(maps: Tensor, pixels: Tensor) -> Tensor:
    """Values of (N_cam, C, H, W) ``maps`` at (N_cam, R, 2) (u, v) pixel coordinates -> (N_cam, R, C)."""
    n_cam, c, h, w = maps.shape
    col = pixels[..., 0].floor().clamp(0, w - 1).long()
    row = pixels[..., 1].floor().clamp(0, h - 1).long()
    flat = maps.flatten(2)  # (N_cam, C, H*W)
    idx = (row * w + col)[:, None].expand(n_cam, c, -1)
    return flat.gather(2, idx).transpose(1, 2)

"""LiDAR point -> augmented-image pixel projection, shared by the ray builder, the curvature sampler and the
point-pixel pairs of the baselines (CLAP, arXiv 2412.03059: rays and targets live in the augmented LiDAR frame).
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor


def depth_homogeneous_aug(img_aug: Tensor) -> Tensor:
    """BEVFusion's ``img_aug_matrix`` acts on pixel coordinates: ``p' = R (u, v, 1) + t``. As a map of
    (u d, v d, d) it is ``R + t e_z^T`` (the translation scales with depth). (..., 4, 4) -> (..., 4, 4)."""
    out = img_aug.clone()
    out[..., :3, 2] = img_aug[..., :3, 2] + img_aug[..., :3, 3]
    out[..., :3, 3] = 0
    return out


def pixel_projection(lidar2img: Tensor, img_aug: Tensor, lidar_aug: Tensor) -> Tensor:
    """(N_cam, 4, 4) maps from the augmented LiDAR frame to (u d, v d, d, 1) of augmented-image pixels:
    the image augmentation after the calibration after undoing the LiDAR augmentation."""
    return depth_homogeneous_aug(img_aug) @ lidar2img @ torch.inverse(lidar_aug)[None]


def project_points(points: Tensor, proj: Tensor, img_shape: Sequence[int],
                   min_depth: float = 1e-3) -> Tuple[Tensor, Tensor, Tensor]:
    """Pixels of points in every camera.

    Args:
        points: (P, >=3) points (x, y, z first) in the frame ``proj`` maps from.
        proj: (N_cam, 4, 4) map to (u d, v d, d, 1) (e.g. :func:`pixel_projection`).
        img_shape: (H, W) of the images.
        min_depth: a point counts as in front of a camera above this depth.

    Returns:
        ``uv`` (N_cam, P, 2) continuous pixel coordinates (u right, v down), ``depth`` (N_cam, P) and ``valid``
        (N_cam, P): in front of the camera and inside the image.
    """
    h, w = int(img_shape[0]), int(img_shape[1])
    hom = torch.cat([points[:, :3], torch.ones_like(points[:, :1])], -1).to(proj.dtype)  # (P, 4)
    p = torch.einsum('cij,pj->cpi', proj, hom)  # (N_cam, P, 4)
    depth = p[..., 2]
    uv = p[..., :2] / depth.clamp(min=1e-6)[..., None]
    valid = (depth > min_depth) & (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
    return uv, depth, valid


def flat_pixel_index(uv: Tensor, img_shape: Sequence[int]) -> Tensor:
    """(N_cam, P) index into the flattened (N_cam, H, W) images of the pixel holding each ``uv`` (N_cam, P, 2)
    (clamped to the image)."""
    h, w = int(img_shape[0]), int(img_shape[1])
    lin = uv[..., 1].floor().clamp(0, h - 1).long() * w + uv[..., 0].floor().clamp(0, w - 1).long()
    return lin + torch.arange(uv.shape[0], device=uv.device)[:, None] * (h * w)

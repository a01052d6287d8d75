"""Ray generation: rays and their targets from one sample's sensors, in the augmented LiDAR frame (CLAP,
arXiv 2412.03059). The one place that makes :class:`RayBatch` es from sensor data, for the pre-trainer, the
pretext probe and the visuals (as nerfstudio's ray generator).

LiDAR rays start at the LiDAR origin and pass through keyframe points (target: the range). Camera rays start at
each camera centre and pass through pixels of the augmented image (targets: the pixel RGB, and the range where
a LiDAR point projects into that pixel). RGB targets exist only where the image is real: pixels that the image
augmentation filled (resize and rotation borders, found by mapping the pixel back through ``img_aug_matrix``
into the original image) and "sky" pixels (no LiDAR return there, and the ray leaves the scene box through its
top face, so nothing in the bounded field can explain their colour) are no RGB targets.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

from ..geometry.projection import flat_pixel_index, pixel_projection, project_points
from ..ray_selection.selection import RaySelection
from .ray_batch import RayBatch
from .ray_box import ray_box_exit_axis


@dataclass
class SensorView:
    """One sample's sensors in the augmented LiDAR frame: what its rays are generated from.

    Attributes:
        points: (P, 3) keyframe LiDAR points inside the range (the candidates of the ray selection).
        origin: (3,) the LiDAR origin.
        proj: (N_cam, 4, 4) augmented-LiDAR -> augmented-pixel projections, or None without camera rays.
        image: (N_cam, 3, H, W) raw images in [0, 1] (the RGB targets), or None.
        img_aug: (N_cam, 4, 4) BEVFusion ``img_aug_matrix`` (for the valid-pixel mask), or None.
        ori_hw: (H, W) of the original images; None: every pixel counts as real.
        depth: (N_cam, H, W) nearest LiDAR depth per pixel (``inf`` where no point projects), or None.
        selection: the selected points and pixels, once drawn.
    """
    points: Tensor
    origin: Tensor
    proj: Optional[Tensor] = None
    image: Optional[Tensor] = None
    img_aug: Optional[Tensor] = None
    ori_hw: Optional[Sequence[int]] = None
    depth: Optional[Tensor] = None
    selection: Optional[RaySelection] = None


def sparse_depth(points: Tensor, proj: Tensor, img_shape: Sequence[int]) -> Tensor:
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


def sensor_view(points: Tensor, lidar_aug: Tensor, lidar2img: Optional[Tensor] = None,
                img_aug: Optional[Tensor] = None, image: Optional[Tensor] = None,
                ori_hw: Optional[Sequence[int]] = None, with_depth: bool = False) -> SensorView:
    """The :class:`SensorView` of one sample.

    Args:
        points: (P, 3) keyframe points in the augmented LiDAR frame.
        lidar_aug: (4, 4) BEVFusion ``lidar_aug_matrix`` (its translation is the LiDAR origin).
        lidar2img, img_aug: (N_cam, 4, 4) calibration and image augmentation; None: no camera.
        image: (N_cam, 3, H, W) raw images in [0, 1].
        ori_hw: (H, W) of the original images.
        with_depth: also project the points into a sparse depth map (range targets, pixels through points).
    """
    view = SensorView(points=points, origin=lidar_aug[:3, 3], image=image, img_aug=img_aug, ori_hw=ori_hw)
    if lidar2img is not None:
        view.proj = pixel_projection(lidar2img, img_aug, lidar_aug)
        if with_depth:
            view.depth = sparse_depth(points, view.proj, image.shape[-2:])
    return view


def lidar_rays(points: Tensor, origin: Tensor) -> RayBatch:
    """Rays from ``origin`` (3,) through ``points`` (N, 3) with their range targets (no colour targets)."""
    delta = points - origin
    rng = delta.norm(dim=-1)
    n = points.shape[0]
    return RayBatch(origins=origin.expand(n, 3).contiguous(), directions=delta / rng.clamp(min=1e-6)[:, None],
                    range=rng, range_mask=rng > 1e-3, rgb=points.new_zeros(n, 3),
                    rgb_mask=torch.zeros(n, dtype=torch.bool, device=points.device))


def camera_rays(proj: Tensor, pixels: Tensor, image: Optional[Tensor] = None,
                depth: Optional[Tensor] = None) -> RayBatch:
    """Rays from the camera centres through pixels, flattened camera by camera (N_cam * R rays).

    Args:
        proj: (N_cam, 4, 4) augmented-LiDAR -> pixel projection (see :func:`pixel_projection`).
        pixels: (N_cam, R, 2) continuous (u, v) pixel coordinates.
        image: (N_cam, 3, H, W) colours in [0, 1]: the RGB targets (every ray gets one); None: no RGB targets.
        depth: (N_cam, H, W) sparse LiDAR depth: range targets where finite; None: no range targets.
    """
    inv = torch.inverse(proj)  # (N_cam, 4, 4)
    centre = inv[:, :3, 3] / inv[:, 3:4, 3]  # image of (0, 0, 0, 1): depth 0
    n_cam, r, _ = pixels.shape
    n = n_cam * r
    hom = torch.cat([pixels, torch.ones(n_cam, r, 2, dtype=pixels.dtype, device=pixels.device)], -1)  # depth 1
    at_depth1 = torch.einsum('cij,crj->cri', inv, hom)
    at_depth1 = at_depth1[..., :3] / at_depth1[..., 3:4]
    delta = at_depth1 - centre[:, None]
    length = delta.norm(dim=-1)  # ray length per unit of camera depth
    directions = (delta / length.clamp(min=1e-9)[..., None]).reshape(n, 3)
    origins = centre[:, None].expand(n_cam, r, 3).reshape(n, 3)
    if depth is not None:
        rng = (gather_pixels(depth[:, None], pixels)[..., 0] * length).reshape(n)
    else:
        rng = torch.full((n, ), float('inf'), dtype=pixels.dtype, device=pixels.device)
    rgb = gather_pixels(image, pixels).reshape(n, 3) if image is not None else pixels.new_zeros(n, 3)
    return RayBatch(origins=origins, directions=directions,
                    range=torch.where(torch.isfinite(rng), rng, torch.zeros_like(rng)),
                    range_mask=torch.isfinite(rng), rgb=rgb,
                    rgb_mask=torch.full((n, ), image is not None, dtype=torch.bool, device=pixels.device))


def pixels_inside_original(pixels: Tensor, img_aug: Tensor, ori_hw: Sequence[int]) -> Tensor:
    """Which augmented-image pixels show the original image (not the zero fill of the augmentation).

    Args:
        pixels: (N_cam, R, 2) (u, v) continuous coordinates in the augmented image.
        img_aug: (N_cam, 4, 4) BEVFusion ``img_aug_matrix`` (2D affine in its upper-left block and last column).
        ori_hw: (H, W) of the original images.

    Returns:
        (N_cam, R) bool: the pixel maps back inside the original image, at least one augmented pixel away
        from its border (the bilinear warp blends the zero fill within that band).
    """
    a, t = img_aug[:, :2, :2], img_aug[:, :2, 3]
    orig = torch.einsum('cij,crj->cri', torch.inverse(a), pixels - t[:, None, :])
    margin = 1.0 / torch.sqrt(torch.det(a).abs()).clamp(min=1e-6)  # one augmented pixel, in original pixels
    h, w = float(ori_hw[0]), float(ori_hw[1])
    m = margin[:, None]
    return (orig[..., 0] >= m) & (orig[..., 0] <= w - m) & (orig[..., 1] >= m) & (orig[..., 1] <= h - m)


def sky_rays(rays: RayBatch, point_cloud_range: Sequence[float]) -> Tensor:
    """(R,) bool: rays without a range target that leave the scene box through its top face."""
    exit_axis = ray_box_exit_axis(rays.origins, rays.directions, point_cloud_range[:3], point_cloud_range[3:])
    return (exit_axis == 2) & (rays.directions[:, 2] > 0) & ~rays.range_mask


def selected_rays(view: SensorView, lidar: bool = True, camera: bool = True, range_targets: bool = True,
                  sky_box: Optional[Sequence[float]] = None) -> RayBatch:
    """The rays of ``view.selection``: the selected LiDAR rays followed by the selected camera rays.

    Args:
        view: a :class:`SensorView` with its selection (and, for camera rays, ``proj`` and ``image``).
        lidar, camera: generate that kind of ray.
        range_targets: give camera rays range targets from ``view.depth``.
        sky_box: the scene box [x0, y0, z0, x1, y1, z1]: sky rays (:func:`sky_rays`) lose their RGB target;
            None keeps them.
    """
    sel = view.selection
    rays = lidar_rays(view.points[sel.point_inds], view.origin)
    if not lidar:
        rays = rays[:0]
    if camera:
        cam = camera_rays(view.proj, sel.pixels, view.image, view.depth if range_targets else None)
        if view.ori_hw is not None:
            cam.rgb_mask &= pixels_inside_original(sel.pixels, view.img_aug, view.ori_hw).reshape(-1)
        if sky_box is not None:
            cam.rgb_mask &= ~sky_rays(cam, sky_box)
        rays = RayBatch.cat([rays, cam])
    return rays

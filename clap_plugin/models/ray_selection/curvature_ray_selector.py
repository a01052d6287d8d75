"""Curvature ray selection: which LiDAR points and camera pixels get a ray (CLAP, arXiv 2412.03059).

Point weights w = |kappa| + eps (normalised), kappa the mean curvature of the rendering field's SDF at
each LiDAR point; N_L points are drawn without replacement. Each camera gets a pixel weight map: the point
weights projected to their pixels, blurred by a Gaussian of ``gaussian_kernel_size``, mixed with a uniform
floor; N_C pixels are drawn from it. During the first ``warmup_epochs`` epochs the draws are uniform; with
``weighting='uniform'`` they are uniform in every epoch (the "uniform sampling" ablation, Table 3). With
``pixel_policy='through_points'`` the pixels are drawn uniformly among those that LiDAR points project into
instead (UniPAD's camera rays).

The caller passes the training epoch to :meth:`CurvatureRaySelector.select`. This is ray *selection*;
sampling distances along a ray is ``rendering.NeuSAlongRaySampler``.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet3d.registry import TASK_UTILS
from torch import Tensor

from clap_plugin.models.geometry.projection import flat_pixel_index, project_points

from .sdf_curvature import ESTIMATORS, SDFFunction, mean_curvature
from .selection import PIXEL_POLICIES, WEIGHTINGS, RaySelection


@TASK_UTILS.register_module()
class CurvatureRaySelector:
    """Select LiDAR points and camera pixels with probability increasing with the SDF curvature.

    Args:
        num_lidar_rays: N_L points drawn per sample (8192).
        num_pixels_per_camera: N_C pixels drawn per camera (1024).
        warmup_epochs: epochs of uniform sampling before curvature sampling starts (4).
        weighting: ``'curvature'`` (default: uniform during the warm-up, by curvature after) or ``'uniform'``
            (uniform in every epoch).
        estimator: ``'exact'`` (double backward) or ``'finite_difference'``.
        fd_step: finite-difference step in metres (about a tenth of a voxel of the field).
        eps: added to |kappa| so that flat regions keep a non-zero probability (1 / metres).
        num_candidates: if set and smaller than the number of points, only a random subset of that many
            points is scored; every point then takes the mean |kappa| of the scored candidates in its
            ``cell_size`` cube (the mean over all candidates where its cube holds none).
        cell_size: cube edge (metres) for spreading candidate scores to unscored points.
        gaussian_kernel_size: K_gaus, odd kernel size (pixels) of the pixel-map blur.
        gaussian_sigma: blur sigma in pixels (default ``gaussian_kernel_size / 6``).
        pixel_floor: share of each pixel map spread uniformly over the image (pixels without LiDAR).
        chunk_size: points per curvature pass.
        pixel_policy: ``'weight_maps'`` (default) or ``'through_points'`` (see the module docstring).
    """

    def __init__(self, num_lidar_rays: int = 8192, num_pixels_per_camera: int = 1024, warmup_epochs: int = 4,
                 estimator: str = 'exact', fd_step: float = 0.06, eps: float = 1e-2,
                 num_candidates: Optional[int] = None, cell_size: float = 1.0, gaussian_kernel_size: int = 9,
                 gaussian_sigma: Optional[float] = None, pixel_floor: float = 0.1,
                 chunk_size: int = 65536, pixel_policy: str = 'weight_maps', weighting: str = 'curvature') -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f'weighting must be one of {WEIGHTINGS}, got {weighting!r}')
        if pixel_policy not in PIXEL_POLICIES:
            raise ValueError(f'pixel_policy must be one of {PIXEL_POLICIES}, got {pixel_policy!r}')
        if estimator not in ESTIMATORS:
            raise ValueError(f'estimator must be one of {ESTIMATORS}, got {estimator!r}')
        if gaussian_kernel_size < 1 or gaussian_kernel_size % 2 == 0:
            raise ValueError(f'gaussian_kernel_size must be a positive odd integer, got {gaussian_kernel_size}')
        if not 0.0 <= pixel_floor <= 1.0:
            raise ValueError(f'pixel_floor must be in [0, 1], got {pixel_floor}')
        if eps <= 0:
            raise ValueError(f'eps must be > 0, got {eps}')
        if num_candidates is not None and num_candidates < 1:
            raise ValueError(f'num_candidates must be >= 1 or None, got {num_candidates}')
        self.num_lidar_rays = int(num_lidar_rays)
        self.num_pixels_per_camera = int(num_pixels_per_camera)
        self.warmup_epochs = int(warmup_epochs)
        self.estimator = estimator
        self.fd_step = float(fd_step)
        self.eps = float(eps)
        self.num_candidates = num_candidates
        self.cell_size = float(cell_size)
        self.gaussian_kernel_size = int(gaussian_kernel_size)
        self.gaussian_sigma = float(gaussian_sigma) if gaussian_sigma else gaussian_kernel_size / 6.0
        self.pixel_floor = float(pixel_floor)
        self.chunk_size = int(chunk_size)
        self.pixel_policy = pixel_policy
        self.weighting = weighting

    # ------------------------------------------------------------------ curvature and point weights
    def in_warmup(self, epoch: int) -> bool:
        """Whether the draws of training epoch ``epoch`` (0-based) are uniform: a warm-up epoch, or any epoch
        with ``weighting='uniform'``."""
        return self.weighting == 'uniform' or int(epoch) < self.warmup_epochs

    def curvature(self, sdf_fn: SDFFunction, points: Tensor) -> Tensor:
        """(P, 3) points -> (P,) |kappa| (detached)."""
        return mean_curvature(sdf_fn, points, self.estimator, self.fd_step, self.chunk_size).abs()

    def point_weights(self, points: Tensor, sdf_fn: Optional[SDFFunction], epoch: int,
                      generator: Optional[torch.Generator] = None) -> Tensor:
        """(P, 3) points -> (P,) sampling probabilities at training epoch ``epoch`` (uniform in warm-up or
        without ``sdf_fn``)."""
        p = points.shape[0]
        if sdf_fn is None or self.in_warmup(epoch):
            return torch.full((p, ), 1.0 / max(p, 1), dtype=points.dtype, device=points.device)
        pts = points[:, :3].detach()
        if self.num_candidates is not None and p > self.num_candidates:
            cand = torch.randperm(p, generator=generator, device='cpu')[:self.num_candidates].to(pts.device)
            score = self._spread_to_cells(pts, cand, self.curvature(sdf_fn, pts[cand]))
        else:
            score = self.curvature(sdf_fn, pts)
        w = score + self.eps
        return w / w.sum()

    def _spread_to_cells(self, pts: Tensor, cand: Tensor, cand_score: Tensor) -> Tensor:
        """Every point takes the mean candidate score of its cell (global candidate mean if none)."""
        cells = torch.floor(pts / self.cell_size).long()
        _, inverse = torch.unique(cells, dim=0, return_inverse=True)
        n_cells = int(inverse.max()) + 1
        total = torch.zeros(n_cells, dtype=pts.dtype, device=pts.device).index_add_(0, inverse[cand], cand_score)
        count = torch.zeros(n_cells, dtype=pts.dtype, device=pts.device).index_add_(
            0, inverse[cand], torch.ones_like(cand_score))
        cell_mean = torch.where(count > 0, total / count.clamp(min=1.0), cand_score.mean())
        return cell_mean[inverse]

    @staticmethod
    def draw(weights: Tensor, num: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """Indices (min(num, P),) drawn without replacement with probabilities ``weights`` (P,)."""
        num = min(int(num), weights.shape[-1])
        return torch.multinomial(weights, num, replacement=False, generator=generator)

    # ------------------------------------------------------------------ pixels
    def gaussian_kernel(self, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        """(K,) normalised 1D Gaussian kernel."""
        k = self.gaussian_kernel_size
        x = torch.arange(k, dtype=dtype, device=device) - (k - 1) / 2.0
        g = torch.exp(-0.5 * (x / self.gaussian_sigma) ** 2)
        return g / g.sum()

    def pixel_weight_maps(self, points: Tensor, weights: Tensor, lidar2img: Tensor,
                          img_shape: Sequence[int]) -> Tensor:
        """Per-camera pixel sampling probabilities.

        Args:
            points: (P, 3) LiDAR-frame points.
            weights: (P,) point weights.
            lidar2img: (N_cam, 4, 4) projection matrices (pixel coordinates of ``img_shape``).
            img_shape: (H, W).

        Returns:
            (N_cam, H, W) maps, each summing to 1.
        """
        h, w = int(img_shape[0]), int(img_shape[1])
        lidar2img = lidar2img.to(points)
        n_cam = lidar2img.shape[0]
        uv, _, valid = project_points(points, lidar2img, img_shape)  # (N_cam, P, 2), (N_cam, P)
        lin = flat_pixel_index(uv, img_shape)
        vals = weights.to(points)[None].expand(n_cam, -1)
        maps = torch.zeros(n_cam * h * w, dtype=points.dtype, device=points.device)
        maps.index_add_(0, lin[valid], vals[valid])
        maps = maps.view(n_cam, 1, h, w)
        k = self.gaussian_kernel(points.dtype, points.device)
        pad = self.gaussian_kernel_size // 2
        maps = F.conv2d(maps, k.view(1, 1, 1, -1), padding=(0, pad))
        maps = F.conv2d(maps, k.view(1, 1, -1, 1), padding=(pad, 0)).view(n_cam, h, w)
        total = maps.flatten(1).sum(-1)[:, None, None]
        uniform = torch.full_like(maps, 1.0 / (h * w))
        normed = torch.where(total > 0, maps / total.clamp(min=1e-30), uniform)
        return (1.0 - self.pixel_floor) * normed + self.pixel_floor * uniform

    def draw_pixels(self, maps: Tensor, num: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """(N_cam, H, W) maps -> (N_cam, num, 2) pixel centres (u, v) drawn without replacement."""
        n_cam, h, w = maps.shape
        idx = torch.multinomial(maps.reshape(n_cam, -1), min(int(num), h * w), replacement=False,
                                generator=generator)
        u = (idx % w).to(maps.dtype) + 0.5
        v = torch.div(idx, w, rounding_mode='floor').to(maps.dtype) + 0.5
        return torch.stack([u, v], dim=-1)

    # ------------------------------------------------------------------ all together
    @staticmethod
    def through_points_maps(lidar_pixels: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """(N_cam, H, W) bool pixels that LiDAR points project into -> maps uniform over them (uniform over
        the image for a camera that no point projects into)."""
        hit = lidar_pixels.to(dtype)
        maps = hit / hit.flatten(1).sum(-1).clamp(min=1.0)[:, None, None]
        empty = hit.flatten(1).sum(-1) == 0
        maps[empty] = 1.0 / (hit.shape[-2] * hit.shape[-1])
        return maps

    def select(self, points: Tensor, lidar2img: Optional[Tensor] = None, img_shape: Optional[Sequence[int]] = None,
               sdf_fn: Optional[SDFFunction] = None, epoch: int = 0, generator: Optional[torch.Generator] = None,
               lidar_pixels: Optional[Tensor] = None) -> RaySelection:
        """Select the LiDAR points and camera pixels of one sample.

        Args:
            points: (P, 3) LiDAR-frame points.
            lidar2img: (N_cam, 4, 4) projections to the pixels of ``img_shape`` (None: no camera rays).
            img_shape: (H, W), required with ``lidar2img``.
            sdf_fn: the field's SDF for the curvature (None: uniform).
            epoch: the training epoch (0-based), for the warm-up.
            generator: random generator of the draws.
            lidar_pixels: (N_cam, H, W) bool, pixels that the points project into; required by the
                ``'through_points'`` policy.
        """
        weights = self.point_weights(points, sdf_fn, epoch, generator)
        sel = RaySelection(point_inds=self.draw(weights, self.num_lidar_rays, generator), point_weights=weights)
        if lidar2img is None:
            return sel
        if img_shape is None:
            raise ValueError('img_shape (H, W) is required with lidar2img')
        h, w = int(img_shape[0]), int(img_shape[1])
        if self.pixel_policy == 'through_points':
            if lidar_pixels is None:
                raise ValueError("pixel_policy='through_points' needs lidar_pixels (N_cam, H, W)")
            maps = self.through_points_maps(lidar_pixels, points.dtype)
        elif sdf_fn is None or self.in_warmup(epoch):
            maps = torch.full((lidar2img.shape[0], h, w), 1.0 / (h * w), dtype=points.dtype, device=points.device)
        else:
            maps = self.pixel_weight_maps(points[:, :3], weights, lidar2img, img_shape)
        sel.pixel_maps = maps
        sel.pixels = self.draw_pixels(maps, self.num_pixels_per_camera, generator)
        return sel

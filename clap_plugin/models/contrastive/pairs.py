"""Pieces of pixel-to-point contrastive pre-training shared by the baselines (projects/PPKT, SimIPU, CMCR).

* :func:`point_pixel_pairs`: back-projection pairs, i.e. every (point, camera) where a LiDAR point of the
  augmented LiDAR frame projects in front of the camera and inside the augmented image, with its pixel.
* :func:`sample_bev_at_points`: a point's feature from a (C, X, Y) BEV map at its (x, y) (bilinear between the
  BEV cells around it, so a point reads its own cell).
* :func:`sample_pixel_features` / :class:`UpsamplingProjection`: PPKT's upsampling feature projection layer
  (1x1 conv to D, then bilinear upsampling to the input resolution), evaluated only at the paired pixels; the
  values are exactly those of the full upsampled map at the pixels (see the tests).
* :func:`info_nce`: InfoNCE with the i-th key the positive of the i-th query and all other keys negatives.
* :func:`bev_cell_index` / :func:`one_per_group`: one pair per (BEV cell, camera).
* :class:`PairwisePretrainerMixin`: the batch's point-pixel pairs and BEV point features of a BEVFusion model.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from clap_plugin.models.pretrain.ray_builder import pixel_projection


def info_nce(query: Tensor, key: Tensor, temperature: float = 0.07, normalize: bool = True) -> Tensor:
    """Mean over i of ``-log softmax_j(<q_i, k_j> / tau)[i]``.

    Args:
        query: (N, D) e.g. point features; key: (N, D) e.g. the features of the paired pixels.
        temperature: tau.
        normalize: L2-normalise both sides first (cosine similarities).
    """
    if query.dim() != 2 or query.shape != key.shape:
        raise ValueError(f'query and key must both be (N, D), got {tuple(query.shape)} and {tuple(key.shape)}')
    if query.shape[0] < 2:
        raise ValueError(f'InfoNCE needs at least 2 pairs (one positive and a negative), got {query.shape[0]}')
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    if normalize:
        query = F.normalize(query, dim=1)
        key = F.normalize(key, dim=1)
    logits = query @ key.t() / temperature
    target = torch.arange(query.shape[0], device=query.device)
    return F.cross_entropy(logits, target)


def contrastive_accuracy(query: Tensor, key: Tensor) -> Tensor:
    """Share of queries whose most similar key (cosine) is their own positive."""
    with torch.no_grad():
        sim = F.normalize(query, dim=1) @ F.normalize(key, dim=1).t()
        return (sim.argmax(1) == torch.arange(query.shape[0], device=query.device)).float().mean()


def point_pixel_pairs(points: Tensor, proj: Tensor, img_shape: Sequence[int],
                      min_depth: float = 1e-3) -> Dict[str, Tensor]:
    """All (point, camera) pairs where a point projects into an image.

    Args:
        points: (P, 3) points in the augmented LiDAR frame.
        proj: (N_cam, 4, 4) augmented LiDAR -> (u d, v d, d, 1) of the augmented image
            (``clap_plugin.models.pretrain.ray_builder.pixel_projection``).
        img_shape: (H, W) of the images.

    Returns:
        ``point_idx`` (M,), ``cam_idx`` (M,), ``uv`` (M, 2) continuous pixel coordinates (u right, v down) and
        ``depth`` (M,), camera-major.
    """
    if points.dim() != 2 or points.shape[1] < 3:
        raise ValueError(f'points must be (P, >=3), got {tuple(points.shape)}')
    if proj.dim() != 3 or proj.shape[1:] != (4, 4):
        raise ValueError(f'proj must be (N_cam, 4, 4), got {tuple(proj.shape)}')
    h, w = int(img_shape[0]), int(img_shape[1])
    hom = torch.cat([points[:, :3], torch.ones_like(points[:, :1])], 1).to(proj.dtype)
    p = torch.einsum('cij,pj->cpi', proj, hom)  # (N_cam, P, 4)
    depth = p[..., 2]
    uv = p[..., :2] / depth.clamp(min=min_depth)[..., None]
    valid = (depth > min_depth) & (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
    cam_idx, point_idx = valid.nonzero(as_tuple=True)
    return dict(point_idx=point_idx, cam_idx=cam_idx, uv=uv[cam_idx, point_idx], depth=depth[cam_idx, point_idx])


def sample_bev_at_points(bev: Tensor, xy: Tensor, point_cloud_range: Sequence[float]) -> Tensor:
    """Bilinear features (P, C) of a (C, X, Y) BEV map (dim 1 indexes x, dim 2 y) at points (P, 2) (x, y).

    Cell i spans ``[x0 + i s, x0 + (i + 1) s)``; a point at a cell centre reads that cell exactly.
    """
    if bev.dim() != 3:
        raise ValueError(f'bev must be (C, X, Y), got {tuple(bev.shape)}')
    x0, y0, _, x1, y1, _ = [float(v) for v in point_cloud_range]
    gx = (xy[:, 0] - x0) / (x1 - x0) * 2 - 1  # along dim 1 (H of grid_sample)
    gy = (xy[:, 1] - y0) / (y1 - y0) * 2 - 1  # along dim 2 (W of grid_sample)
    grid = torch.stack([gy, gx], -1).to(bev.dtype)[None, :, None]  # (1, P, 1, 2)
    out = F.grid_sample(bev[None], grid, mode='bilinear', padding_mode='border', align_corners=False)
    return out[0, :, :, 0].t()


def sample_pixel_features(feats: Tensor, img_idx: Tensor, uv: Tensor, image_size: Sequence[int]) -> Tensor:
    """Values (M, C) of ``F.interpolate(feats, size=image_size, mode='bilinear', align_corners=False)`` at the
    pixels containing ``uv`` (image ``img_idx``), without building the full-resolution maps.

    Args:
        feats: (N_img, C, h, w) low-resolution feature maps.
        img_idx: (M,) image of each query; uv: (M, 2) continuous (u, v) pixel coordinates.
        image_size: (H, W) pixel resolution of the images.
    """
    h_img, w_img = int(image_size[0]), int(image_size[1])
    col = uv[:, 0].floor().clamp(0, w_img - 1)
    row = uv[:, 1].floor().clamp(0, h_img - 1)
    grid = torch.stack([(col + 0.5) / w_img * 2 - 1, (row + 0.5) / h_img * 2 - 1], -1).to(feats.dtype)
    out = feats.new_zeros(uv.shape[0], feats.shape[1])
    for i in torch.unique(img_idx).tolist():
        sel = (img_idx == i).nonzero(as_tuple=True)[0]
        s = F.grid_sample(feats[i:i + 1], grid[sel][None, :, None], mode='bilinear', padding_mode='border',
                          align_corners=False)  # (1, C, m, 1)
        out = out.index_copy(0, sel, s[0, :, :, 0].t())
    return out


class UpsamplingProjection(nn.Module):
    """PPKT's upsampling feature projection layer: 1x1 conv C -> D, then bilinear upsampling to the input
    resolution. ``forward`` builds the full map; :meth:`sample` evaluates it only at given pixels (the 1x1
    conv commutes with bilinear interpolation, whose weights sum to one)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, feats: Tensor, image_size: Sequence[int]) -> Tensor:
        return F.interpolate(self.conv(feats), size=tuple(int(s) for s in image_size), mode='bilinear',
                             align_corners=False)

    def sample(self, feats: Tensor, img_idx: Tensor, uv: Tensor, image_size: Sequence[int]) -> Tensor:
        x = sample_pixel_features(feats, img_idx, uv, image_size)
        return F.linear(x, self.conv.weight.flatten(1), self.conv.bias)


def subsample(n: int, k: int, device, generator=None) -> Tensor:
    """Indices of ``min(n, k)`` of ``n`` items drawn without replacement."""
    if n <= k:
        return torch.arange(n, device=device)
    return torch.randperm(n, generator=generator, device='cpu')[:k].to(device)


def keyframe_points(points: Tensor, point_cloud_range: Sequence[float], keyframe_dim) -> Tuple[Tensor, Tensor]:
    """(P, C) -> keyframe points (time-lag column ``keyframe_dim`` == 0) inside the range, and their indices."""
    keep = torch.ones(points.shape[0], dtype=torch.bool, device=points.device)
    if keyframe_dim is not None and points.shape[1] > keyframe_dim:
        keep &= points[:, keyframe_dim] == 0
    x0, y0, z0, x1, y1, z1 = [float(v) for v in point_cloud_range]
    p = points[:, :3]
    keep &= (p[:, 0] >= x0) & (p[:, 0] < x1) & (p[:, 1] >= y0) & (p[:, 1] < y1) & (p[:, 2] >= z0) & (p[:, 2] < z1)
    idx = keep.nonzero(as_tuple=True)[0]
    return points[idx], idx


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


class PairwisePretrainerMixin:
    """Helpers shared by the point-pixel baselines (they need both branches' configs and a LiDAR range)."""

    @property
    def point_cloud_range(self) -> List[float]:
        if self.pts_voxel_layer is None:
            raise RuntimeError(f'{type(self).__name__} needs the LiDAR branch')
        return self.pts_voxel_layer.point_cloud_range

    def gather_pairs(self, points: Sequence[Tensor], cams: Dict[str, Tensor], num_cams: int,
                     img_shape: Sequence[int], keyframe_dim: Optional[int]) -> Dict[str, Tensor]:
        """Point-pixel pairs of a batch: ``batch_idx``, ``xyz`` (M, 3), ``img_idx`` (into B * N_cam images),
        ``uv`` (M, 2), ``depth`` (M,)."""
        out = {k: [] for k in ('batch_idx', 'xyz', 'img_idx', 'uv', 'depth')}
        for b, pts in enumerate(points):
            kf, _ = keyframe_points(pts, self.point_cloud_range, keyframe_dim)
            proj = pixel_projection(cams['lidar2img'][b], cams['img_aug_matrix'][b], cams['lidar_aug_matrix'][b])
            pairs = point_pixel_pairs(kf[:, :3], proj, img_shape)
            m = pairs['point_idx'].numel()
            out['batch_idx'].append(torch.full((m, ), b, dtype=torch.long, device=pts.device))
            out['xyz'].append(kf[pairs['point_idx'], :3])
            out['img_idx'].append(pairs['cam_idx'] + b * num_cams)
            out['uv'].append(pairs['uv'].to(pts.dtype))
            out['depth'].append(pairs['depth'].to(pts.dtype))
        return {k: torch.cat(v) for k, v in out.items()}

    def bev_point_features(self, bev: Tensor, batch_idx: Tensor, xyz: Tensor) -> Tensor:
        """(M, C) features of the (B, C, X, Y) BEV at each point's cell."""
        out = bev.new_zeros(xyz.shape[0], bev.shape[1])
        for b in torch.unique(batch_idx).tolist():
            sel = (batch_idx == b).nonzero(as_tuple=True)[0]
            out = out.index_copy(0, sel, sample_bev_at_points(bev[b], xyz[sel, :2], self.point_cloud_range))
        return out

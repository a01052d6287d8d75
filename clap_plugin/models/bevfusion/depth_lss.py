"""LSS view transform with LiDAR depth (BEVFusion's "DepthLSS"): image features -> camera BEV.

Per camera, a sparse depth image rendered from the LiDAR points goes through ``dtransform`` (to the feature
resolution, 64 channels), is concatenated with the image features, and ``depthnet`` predicts a categorical
depth distribution over ``D`` bins plus ``C`` context channels. Their outer product is placed on the camera
frustum, which is mapped to LiDAR coordinates (undoing the image augmentation, applying the LiDAR
augmentation) and summed into BEV cells by :func:`bev_pool`. ``downsample`` halves the BEV resolution.

Camera conventions (as in mmdet3d's BEVFusion): ``lidar2img`` / ``cam2img`` / ``cam2lidar`` describe the
original images; ``img_aug_matrix`` (4x4) maps original pixels to augmented pixels; ``lidar_aug_matrix``
(4x4) maps original LiDAR coordinates to augmented ones (points given to the model are augmented).

Differences from upstream: the depth image keeps the nearest point where several points hit one pixel
(upstream keeps an arbitrary one), and points behind a camera are skipped explicitly. With the same weights
the camera BEV otherwise equals upstream's (cells are indexed by truncation, as upstream does, by default).
"""
from typing import List, Optional, Sequence

import torch
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from .bev_pool import bev_pool


def _bev_downsample(channels: int, stride: int) -> nn.Module:
    """Three 3x3 conv-BN-ReLU, the second with ``stride``; identity when ``stride == 1``."""
    if stride == 1:
        return nn.Identity()
    if stride != 2:
        raise ValueError(f'downsample must be 1 or 2, got {stride}')
    layers: List[nn.Module] = []
    for s in (1, stride, 1):
        layers += [nn.Conv2d(channels, channels, 3, stride=s, padding=1, bias=False),
                   nn.BatchNorm2d(channels), nn.ReLU(True)]
    return nn.Sequential(*layers)


@MODELS.register_module()
class CLAPDepthLSSTransform(BaseModule):
    """Lift-splat-shoot with LiDAR depth input.

    Args:
        in_channels: channels of the image features (neck output).
        out_channels: C, channels of the camera BEV.
        image_size: (H, W) of the network input images.
        feature_size: (fH, fW) of the image features (``image_size / 8``).
        xbound, ybound, zbound: (min, max, step) of the BEV grid in metres.
        dbound: (min, max, step) of the depth bins in metres; D = len(arange(*dbound)).
        downsample: 1 or 2, stride of the BEV downsampling block.
        cell_index: how frustum coordinates become cell indices. ``'trunc'`` (default) rounds toward zero
            as mmdet3d's BEVFusion does (``.long()``), so points up to one cell below a lower bound still land
            in the first cell (with ``zbound=[-10, 10, 20]``: z down to -30 m); this keeps the function of
            upstream checkpoints. ``'floor'`` bins strictly inside the bounds.
        init_cfg: mmengine init config.

    State (same names as BEVFusion's ``DepthLSSTransform``): buffers ``dx``/``bx``/``nx`` (cell size,
    first cell centre, cell count along x, y, z) and ``frustum`` (D, fH, fW, 3) of (u, v, depth); modules
    ``dtransform``, ``depthnet``, ``downsample``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 image_size: Sequence[int],
                 feature_size: Sequence[int],
                 xbound: Sequence[float],
                 ybound: Sequence[float],
                 zbound: Sequence[float],
                 dbound: Sequence[float],
                 downsample: int = 1,
                 cell_index: str = 'trunc',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if cell_index not in ('trunc', 'floor'):
            raise ValueError(f"cell_index must be 'trunc' or 'floor', got {cell_index!r}")
        self.cell_index = cell_index
        for name, b in (('xbound', xbound), ('ybound', ybound), ('zbound', zbound), ('dbound', dbound)):
            if len(b) != 3 or b[2] <= 0 or b[1] <= b[0]:
                raise ValueError(f'{name} must be (min, max, step>0) with max > min, got {b}')
        if len(image_size) != 2 or len(feature_size) != 2:
            raise ValueError(f'image_size and feature_size must be (H, W), got {image_size}, {feature_size}')
        self.in_channels = in_channels
        self.C = out_channels
        self.image_size = tuple(int(v) for v in image_size)
        self.feature_size = tuple(int(v) for v in feature_size)
        self.xbound, self.ybound, self.zbound, self.dbound = xbound, ybound, zbound, dbound
        bounds = (xbound, ybound, zbound)
        self.register_buffer('dx', torch.tensor([b[2] for b in bounds], dtype=torch.float32))
        self.register_buffer('bx', torch.tensor([b[0] + b[2] / 2.0 for b in bounds], dtype=torch.float32))
        self.register_buffer('nx', torch.tensor([int((b[1] - b[0]) / b[2]) for b in bounds], dtype=torch.long))
        self.register_buffer('frustum', self._make_frustum())
        self.D = self.frustum.shape[0]

        # sparse depth image (1 channel, image resolution) -> 64 channels at feature resolution (stride 8)
        self.dtransform = nn.Sequential(
            nn.Conv2d(1, 8, 1), nn.BatchNorm2d(8), nn.ReLU(True),
            nn.Conv2d(8, 32, 5, stride=4, padding=2), nn.BatchNorm2d(32), nn.ReLU(True),
            nn.Conv2d(32, 64, 5, stride=2, padding=2), nn.BatchNorm2d(64), nn.ReLU(True))
        self.depthnet = nn.Sequential(
            nn.Conv2d(in_channels + 64, in_channels, 3, padding=1), nn.BatchNorm2d(in_channels), nn.ReLU(True),
            nn.Conv2d(in_channels, in_channels, 3, padding=1), nn.BatchNorm2d(in_channels), nn.ReLU(True),
            nn.Conv2d(in_channels, self.D + self.C, 1))
        self.downsample = _bev_downsample(out_channels, downsample)

    def _make_frustum(self) -> Tensor:
        """(D, fH, fW, 3) frustum points (u, v, d): pixel coordinates in the input image and depth."""
        ih, iw = self.image_size
        fh, fw = self.feature_size
        ds = torch.arange(*self.dbound, dtype=torch.float32)
        d = ds.numel()
        us = torch.linspace(0, iw - 1, fw, dtype=torch.float32)
        vs = torch.linspace(0, ih - 1, fh, dtype=torch.float32)
        return torch.stack((us.view(1, 1, fw).expand(d, fh, fw), vs.view(1, fh, 1).expand(d, fh, fw),
                            ds.view(d, 1, 1).expand(d, fh, fw)), dim=-1)

    def get_geometry(self, cam2lidar: Tensor, cam2img: Tensor, img_aug_matrix: Tensor,
                     lidar_aug_matrix: Tensor) -> Tensor:
        """LiDAR coordinates of the frustum points.

        Args:
            cam2lidar: (B, N, 4, 4). cam2img: (B, N, 4, 4) (intrinsics in [:3, :3]).
            img_aug_matrix: (B, N, 4, 4). lidar_aug_matrix: (B, 4, 4).

        Returns:
            (B, N, D, fH, fW, 3) points (x, y, z) in the augmented LiDAR frame.
        """
        b, n = cam2lidar.shape[:2]
        pts = self.frustum.to(cam2lidar.dtype).view(1, 1, -1, 3)  # (1, 1, P, 3)
        # augmented pixels -> original pixels
        post_rot, post_trans = img_aug_matrix[..., :3, :3], img_aug_matrix[..., :3, 3]
        pts = (pts - post_trans.unsqueeze(2)) @ torch.inverse(post_rot).transpose(-1, -2)
        # (u, v, d) -> camera coordinates (u d, v d, d) -> LiDAR
        pts = torch.cat((pts[..., :2] * pts[..., 2:3], pts[..., 2:3]), dim=-1)
        combine = cam2lidar[..., :3, :3] @ torch.inverse(cam2img[..., :3, :3])
        pts = pts @ combine.transpose(-1, -2) + cam2lidar[..., :3, 3].unsqueeze(2)
        # LiDAR augmentation
        rot, trans = lidar_aug_matrix[:, :3, :3], lidar_aug_matrix[:, :3, 3]
        pts = pts @ rot.transpose(-1, -2).unsqueeze(1) + trans.view(b, 1, 1, 3)
        return pts.view(b, n, *self.frustum.shape)

    @torch.no_grad()
    def depth_image(self, points: Optional[List[Tensor]], lidar2img: Tensor, img_aug_matrix: Tensor,
                    lidar_aug_matrix: Tensor, num_cams: int) -> Tensor:
        """Sparse depth image of each camera from the LiDAR points (0 where no point projects).

        Args:
            points: B tensors (P_b, >=3) in the augmented LiDAR frame, or None (camera-only: all zeros).
            lidar2img: (B, N, 4, 4) original LiDAR -> original image projection.
            img_aug_matrix: (B, N, 4, 4). lidar_aug_matrix: (B, 4, 4).
            num_cams: N.

        Returns:
            (B, N, 1, H, W) depth (distance along the optical axis); where several points hit one pixel,
            the nearest is kept.
        """
        b = lidar2img.shape[0]
        ih, iw = self.image_size
        depth = lidar2img.new_zeros(b, num_cams, ih * iw)
        if points is None:
            return depth.view(b, num_cams, 1, ih, iw)
        for i in range(b):
            xyz = points[i][:, :3].to(lidar2img.dtype)
            # undo the LiDAR augmentation: original = R^-1 (p - t)
            rot, trans = lidar_aug_matrix[i, :3, :3], lidar_aug_matrix[i, :3, 3]
            xyz = (xyz - trans) @ torch.inverse(rot).transpose(0, 1)
            cam = xyz.unsqueeze(0) @ lidar2img[i, :, :3, :3].transpose(-1, -2) + lidar2img[i, :, None, :3, 3]
            dist = cam[..., 2]  # (N, P)
            uv1 = torch.cat((cam[..., :2] / dist.clamp(min=1e-5).unsqueeze(-1), torch.ones_like(dist)[..., None]),
                            dim=-1)
            aug = img_aug_matrix[i]
            uv = (uv1 @ aug[:, :3, :3].transpose(-1, -2) + aug[:, None, :3, 3])[..., :2]
            u, v = uv[..., 0], uv[..., 1]
            on_img = (dist > 1e-5) & (u >= 0) & (u < iw) & (v >= 0) & (v < ih)
            cam_idx, pt_idx = torch.nonzero(on_img, as_tuple=True)
            pix = v[cam_idx, pt_idx].long() * iw + u[cam_idx, pt_idx].long()
            flat = cam_idx * (ih * iw) + pix
            d = dist[cam_idx, pt_idx]
            img = torch.full((num_cams * ih * iw, ), float('inf'), dtype=d.dtype, device=d.device)
            img = img.scatter_reduce(0, flat, d, reduce='amin')
            depth[i] = torch.where(torch.isinf(img), torch.zeros_like(img), img).view(num_cams, ih * iw)
        return depth.view(b, num_cams, 1, ih, iw)

    def get_cam_feats(self, x: Tensor, depth: Tensor) -> Tensor:
        """Depth-weighted context features on the frustum.

        Args:
            x: (B, N, C_in, fH, fW) image features. depth: (B, N, 1, H, W) sparse depth images.

        Returns:
            (B, N, D, fH, fW, C) frustum features.
        """
        b, n, c, fh, fw = x.shape
        d = self.dtransform(depth.view(b * n, *depth.shape[2:]))
        x = self.depthnet(torch.cat([d, x.view(b * n, c, fh, fw)], dim=1))
        prob = x[:, :self.D].softmax(dim=1)  # (BN, D, fH, fW)
        ctx = x[:, self.D:self.D + self.C].permute(0, 2, 3, 1).contiguous()  # (BN, fH, fW, C)
        # outer product built directly in the channel-last layout the pooling reads (no large copy)
        x = prob.unsqueeze(-1) * ctx.unsqueeze(1)  # (BN, D, fH, fW, C)
        return x.view(b, n, self.D, fh, fw, self.C)

    def pool(self, geom: Tensor, feats: Tensor) -> Tensor:
        """Sum frustum features into BEV cells.

        Args:
            geom: (B, N, D, fH, fW, 3) LiDAR coordinates. feats: (B, N, D, fH, fW, C).

        Returns:
            (B, C * Z, X, Y) camera BEV, channels ordered (Z, C).
        """
        b = feats.shape[0]
        rel = (geom - (self.bx - self.dx / 2.0)) / self.dx
        cell = (torch.floor(rel) if self.cell_index == 'floor' else torch.trunc(rel)).long().view(b, -1, 3)
        batch_ix = torch.arange(b, device=geom.device).view(b, 1, 1).expand(b, cell.shape[1], 1)
        coords = torch.cat((batch_ix, cell), dim=-1).view(-1, 4)
        nx, ny, nz = (int(v) for v in self.nx.tolist())
        bev = bev_pool(feats.reshape(-1, feats.shape[-1]), coords, b, (nx, ny, nz))  # (B, C, Z, X, Y)
        return bev.transpose(1, 2).reshape(b, nz * self.C, nx, ny)

    def forward(self, img: Tensor, points: Optional[List[Tensor]], lidar2img: Tensor, cam2img: Tensor,
                cam2lidar: Tensor, img_aug_matrix: Tensor, lidar_aug_matrix: Tensor) -> Tensor:
        """Image features -> camera BEV.

        Args:
            img: (B, N, C_in, fH, fW) image features.
            points: B point clouds (augmented LiDAR frame) for the depth input, or None.
            lidar2img, cam2img, cam2lidar, img_aug_matrix: (B, N, 4, 4). lidar_aug_matrix: (B, 4, 4).

        Returns:
            (B, C, X / s, Y / s) camera BEV (s = downsample stride).
        """
        b, n = img.shape[:2]
        if tuple(img.shape[3:]) != self.feature_size:
            raise ValueError(f'image features are {tuple(img.shape[3:])}, view_transform.feature_size is '
                             f'{self.feature_size}')
        geom = self.get_geometry(cam2lidar, cam2img, img_aug_matrix, lidar_aug_matrix)
        depth = self.depth_image(points, lidar2img, img_aug_matrix, lidar_aug_matrix, n)
        feats = self.get_cam_feats(img, depth.to(img.dtype))
        return self.downsample(self.pool(geom, feats))

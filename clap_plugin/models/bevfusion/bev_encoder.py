"""The BEVFusion encoder stack shared by the detector and the pre-trainers (mmdet3d projects/BEVFusion layout).

Camera branch: ``img_backbone`` -> ``img_neck`` -> ``view_transform`` (camera BEV). LiDAR branch: hard
voxelization (in the model, (x, y, z) voxel coordinates) -> ``pts_voxel_encoder`` -> ``pts_middle_encoder``
(LiDAR BEV). ``fusion_layer`` fuses [camera BEV, LiDAR BEV]; ``pts_backbone`` + ``pts_neck`` give the fused
BEV. Either branch may be left out (LiDAR-only: no ``img_*``/``view_transform``; camera-only: no
``pts_voxel_encoder``/``pts_middle_encoder``), and then ``fusion_layer`` may be None.

BEV maps are laid out (B, C, X, Y) as in BEVFusion: dim 2 indexes x, dim 3 indexes y.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet3d.registry import MODELS
from mmengine.model import BaseModel
from torch import Tensor

from .voxelization import HardVoxelization

_VOXELIZE_KEYS = ('voxel_size', 'point_cloud_range', 'max_num_points', 'max_voxels', 'voxelize_reduce')


def _as_cam_matrices(value, key: str, num_cams: int) -> np.ndarray:
    """One sample's per-camera matrices as (N, 4, 4) float64 (3x3 intrinsics are padded)."""
    arr = np.asarray(value.cpu() if isinstance(value, Tensor) else value, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[0] != num_cams or arr.shape[1:] not in ((3, 3), (4, 4)):
        raise ValueError(f'meta {key!r} must be ({num_cams}, 4, 4) or ({num_cams}, 3, 3), got {arr.shape}')
    if arr.shape[1:] == (3, 3):
        out = np.tile(np.eye(4), (num_cams, 1, 1))
        out[:, :3, :3] = arr
        arr = out
    return arr


class BEVFusionEncoder(BaseModel):
    """The encoders of BEVFusion with its submodule names (checkpoints are interchangeable) and
    :meth:`extract_bev`; :class:`CLAPBEVFusion` adds the detection head, the pre-trainers their pretext.

    Args:
        data_preprocessor: e.g. ``Det3DDataPreprocessor`` (image normalisation, multi-view stacking). A
            ``voxelize_cfg`` inside it (upstream BEVFusion's place) is taken out and used as ``voxelize_cfg``.
        voxelize_cfg: ``voxel_size``, ``point_cloud_range``, ``max_num_points``, ``max_voxels`` (int or
            (train, test)) and optionally ``voxelize_reduce`` (must be True: voxel features are the mean of
            their points, which is what ``HardSimpleVFE`` computes). Required with a LiDAR branch; its
            ``point_cloud_range`` is the model's :attr:`point_cloud_range`.
        pts_voxel_encoder, pts_middle_encoder: LiDAR branch configs.
        img_backbone, img_neck, view_transform: camera branch configs.
        fusion_layer: fuser of [camera BEV, LiDAR BEV]; required when both branches are present.
        pts_backbone, pts_neck: BEV backbone and neck configs.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 data_preprocessor: Optional[dict] = None,
                 voxelize_cfg: Optional[dict] = None,
                 pts_voxel_encoder: Optional[dict] = None,
                 pts_middle_encoder: Optional[dict] = None,
                 fusion_layer: Optional[dict] = None,
                 img_backbone: Optional[dict] = None,
                 img_neck: Optional[dict] = None,
                 view_transform: Optional[dict] = None,
                 pts_backbone: Optional[dict] = None,
                 pts_neck: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is not None and 'voxelize_cfg' in data_preprocessor:
            data_preprocessor = copy.deepcopy(dict(data_preprocessor))
            inner = data_preprocessor.pop('voxelize_cfg')
            if voxelize_cfg is not None:
                raise ValueError('voxelize_cfg given both in the model and in data_preprocessor; keep one')
            voxelize_cfg = inner
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._point_cloud_range = None if voxelize_cfg is None or 'point_cloud_range' not in voxelize_cfg \
            else [float(v) for v in voxelize_cfg['point_cloud_range']]

        has_lidar = pts_voxel_encoder is not None or pts_middle_encoder is not None
        has_camera = img_backbone is not None or view_transform is not None
        if has_lidar and (pts_voxel_encoder is None or pts_middle_encoder is None or voxelize_cfg is None):
            raise ValueError('the LiDAR branch needs voxelize_cfg, pts_voxel_encoder and pts_middle_encoder')
        if has_camera and (img_backbone is None or img_neck is None or view_transform is None):
            raise ValueError('the camera branch needs img_backbone, img_neck and view_transform')
        if not (has_lidar or has_camera):
            raise ValueError('the BEVFusion encoders need a LiDAR branch, a camera branch, or both')
        if has_lidar and has_camera and fusion_layer is None:
            raise ValueError('fusion_layer is required when both the camera and the LiDAR branch are present')
        if pts_backbone is None or pts_neck is None:
            raise ValueError('pts_backbone and pts_neck are required')

        self.pts_voxel_layer = None
        if has_lidar:
            voxelize_cfg = dict(voxelize_cfg)
            unknown = set(voxelize_cfg) - set(_VOXELIZE_KEYS)
            if unknown:
                raise KeyError(f'unknown voxelize_cfg keys {sorted(unknown)}; allowed: {_VOXELIZE_KEYS}')
            if not voxelize_cfg.pop('voxelize_reduce', True):
                raise ValueError('voxelize_reduce=False is not supported: voxel features are the mean of '
                                 'their points (HardSimpleVFE)')
            max_voxels = voxelize_cfg.pop('max_voxels', 20000)
            self.pts_voxel_layer = HardVoxelization(max_voxels=tuple(max_voxels) if isinstance(
                max_voxels, (list, tuple)) else max_voxels, **voxelize_cfg)
        self.pts_voxel_encoder = MODELS.build(pts_voxel_encoder) if has_lidar else None
        self.pts_middle_encoder = MODELS.build(pts_middle_encoder) if has_lidar else None
        self.img_backbone = MODELS.build(img_backbone) if has_camera else None
        self.img_neck = MODELS.build(img_neck) if has_camera else None
        self.view_transform = MODELS.build(view_transform) if has_camera else None
        self.fusion_layer = MODELS.build(fusion_layer) if fusion_layer is not None else None
        self.pts_backbone = MODELS.build(pts_backbone)
        self.pts_neck = MODELS.build(pts_neck)

    @property
    def point_cloud_range(self) -> List[float]:
        """[x0, y0, z0, x1, y1, z1] of the scene (metres): ``voxelize_cfg.point_cloud_range``."""
        if self._point_cloud_range is None:
            raise RuntimeError(f'{type(self).__name__} has no point-cloud range: give voxelize_cfg')
        return self._point_cloud_range

    @property
    def with_camera(self) -> bool:
        """Whether the model has a camera branch."""
        return self.view_transform is not None

    @property
    def with_lidar(self) -> bool:
        """Whether the model has a LiDAR branch."""
        return self.pts_middle_encoder is not None

    # ------------------------------------------------------------------ LiDAR branch
    @torch.no_grad()
    def voxelize(self, points: Sequence[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """Hard-voxelize a batch of point clouds.

        Args:
            points: B tensors (P_b, C).

        Returns:
            voxels: (M, max_num_points, C); num_points: (M,); coords: (M, 4) int32 (batch, x, y, z).
        """
        if self.pts_voxel_layer is None:
            raise RuntimeError('voxelize() needs a LiDAR branch (voxelize_cfg)')
        voxels, nums, coords = [], [], []
        for i, pts in enumerate(points):
            v, c, n = self.pts_voxel_layer(pts.float())
            voxels.append(v)
            nums.append(n)
            coords.append(torch.cat([c.new_full((c.shape[0], 1), i), c], dim=1))
        return torch.cat(voxels), torch.cat(nums), torch.cat(coords)

    def encode_voxels(self, voxels: Tensor, num_points: Tensor, coords: Tensor, batch_size: int) -> Tensor:
        """Voxels -> LiDAR BEV (B, C_lidar, X, Y); see :meth:`voxelize` for the inputs."""
        feats = self.pts_voxel_encoder(voxels, num_points, coords)
        return self.pts_middle_encoder(feats, coords, batch_size)

    def extract_pts_feat(self, points: Sequence[Tensor]) -> Tensor:
        """B point clouds (P_b, C) -> LiDAR BEV (B, C_lidar, X, Y), 256 x 180 x 180 in BEVFusion."""
        voxels, num_points, coords = self.voxelize(points)
        return self.encode_voxels(voxels, num_points, coords, len(points))

    # ------------------------------------------------------------------ camera branch
    def camera_matrices(self, batch_input_metas: Sequence[dict], num_cams: int,
                        ref: Tensor) -> Dict[str, Tensor]:
        """Stack the camera metas of a batch into tensors like ``ref``.

        Reads ``cam2img`` and ``lidar2cam`` (required), ``lidar2img`` and ``cam2lidar`` (derived when
        absent), ``img_aug_matrix`` (N, 4, 4) and ``lidar_aug_matrix`` (4, 4) (identity when absent).

        Returns:
            dict of ``lidar2img``, ``cam2img``, ``cam2lidar``, ``img_aug_matrix`` (B, N, 4, 4) and
            ``lidar_aug_matrix`` (B, 4, 4).
        """
        out: Dict[str, list] = {k: [] for k in ('lidar2img', 'cam2img', 'cam2lidar', 'img_aug_matrix',
                                                'lidar_aug_matrix')}
        for meta in batch_input_metas:
            for key in ('cam2img', 'lidar2cam'):
                if key not in meta:
                    raise KeyError(f'camera branch: data sample meta lacks {key!r} (has {sorted(meta)})')
            cam2img = _as_cam_matrices(meta['cam2img'], 'cam2img', num_cams)
            lidar2cam = _as_cam_matrices(meta['lidar2cam'], 'lidar2cam', num_cams)
            lidar2img = (_as_cam_matrices(meta['lidar2img'], 'lidar2img', num_cams)
                         if 'lidar2img' in meta else cam2img @ lidar2cam)
            cam2lidar = (_as_cam_matrices(meta['cam2lidar'], 'cam2lidar', num_cams)
                         if 'cam2lidar' in meta else np.linalg.inv(lidar2cam))
            img_aug = (_as_cam_matrices(meta['img_aug_matrix'], 'img_aug_matrix', num_cams)
                       if 'img_aug_matrix' in meta else np.tile(np.eye(4), (num_cams, 1, 1)))
            lidar_aug = np.asarray(meta.get('lidar_aug_matrix', np.eye(4)), dtype=np.float64)
            if lidar_aug.shape != (4, 4):
                raise ValueError(f"meta 'lidar_aug_matrix' must be (4, 4), got {lidar_aug.shape}")
            for key, value in (('lidar2img', lidar2img), ('cam2img', cam2img), ('cam2lidar', cam2lidar),
                               ('img_aug_matrix', img_aug), ('lidar_aug_matrix', lidar_aug)):
                out[key].append(value)
        return {k: ref.new_tensor(np.stack(v)) for k, v in out.items()}

    def extract_img_feat(self, imgs: Tensor, points: Optional[Sequence[Tensor]],
                         batch_input_metas: Sequence[dict], cams: Optional[Dict[str, Tensor]] = None) -> Tensor:
        """Multi-view images -> camera BEV.

        Args:
            imgs: (B, N, 3, H, W) normalised images.
            points: B point clouds for the depth input of the view transform, or None.
            batch_input_metas: per-sample metas with the camera matrices (see :meth:`camera_matrices`).
            cams: the :meth:`camera_matrices` of these metas when the caller has them already (fp32).

        Returns:
            (B, C_cam, X, Y) camera BEV, 80 x 180 x 180 in BEVFusion.
        """
        if imgs.dim() != 5:
            raise ValueError(f'imgs must be (B, N, C, H, W), got shape {tuple(imgs.shape)}')
        b, n, c, h, w = imgs.shape
        x = self.img_backbone(imgs.reshape(b * n, c, h, w))
        x = self.img_neck(x)
        if not isinstance(x, Tensor):
            x = x[0]
        x = x.view(b, n, *x.shape[1:])
        mats = cams if cams is not None else self.camera_matrices(batch_input_metas, n, x.float())
        mats = {k: v.to(device=x.device, dtype=torch.float32) for k, v in mats.items()}
        return self.view_transform(x.float(), None if points is None else [p.float() for p in points],
                                   mats['lidar2img'], mats['cam2img'], mats['cam2lidar'],
                                   mats['img_aug_matrix'], mats['lidar_aug_matrix'])

    # ------------------------------------------------------------------ fusion
    def fuse_bev(self, camera_bev: Optional[Tensor], lidar_bev: Optional[Tensor]) -> Tensor:
        """Per-modality BEVs -> fused BEV after ``pts_backbone`` and ``pts_neck`` (B, 512, X, Y)."""
        feats = [f for f in (camera_bev, lidar_bev) if f is not None]
        if self.fusion_layer is not None:
            x = self.fusion_layer(feats)
        else:
            if len(feats) != 1:
                raise RuntimeError(f'{len(feats)} BEV maps but no fusion_layer')
            x = feats[0]
        x = self.pts_neck(self.pts_backbone(x))
        return x[0] if isinstance(x, (list, tuple)) else x

    def extract_bev(self, batch_inputs_dict: dict, batch_input_metas: Sequence[dict],
                    cams: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
        """Encoders without the head.

        Args:
            batch_inputs_dict: ``points`` (B tensors (P_b, C)) and/or ``imgs`` (B, N, 3, H, W).
            batch_input_metas: per-sample metas.
            cams: optional :meth:`camera_matrices` of the batch (not rebuilt from the metas then).

        Returns:
            dict with ``lidar_bev`` (B, 256, X, Y) when there is a LiDAR branch, ``camera_bev``
            (B, 80, X, Y) when there is a camera branch, and ``fused_bev`` (B, 512, X, Y).
        """
        points = batch_inputs_dict.get('points')
        imgs = batch_inputs_dict.get('imgs')
        out: Dict[str, Tensor] = {}
        if self.with_camera:
            if imgs is None:
                raise KeyError("camera branch: batch inputs lack 'imgs'")
            out['camera_bev'] = self.extract_img_feat(imgs, points, batch_input_metas, cams)
        if self.with_lidar:
            if points is None:
                raise KeyError("LiDAR branch: batch inputs lack 'points'")
            out['lidar_bev'] = self.extract_pts_feat(points)
        out['fused_bev'] = self.fuse_bev(out.get('camera_bev'), out.get('lidar_bev'))
        return out

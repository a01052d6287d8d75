"""PPKT pre-training of the BEVFusion LiDAR branch (Liu et al., 2021, "Learning from 2D: contrastive
pixel-to-point knowledge transfer for 3D pretraining").

A frozen 2D teacher (by default a copy of the image backbone as initialised) encodes the six images; an
upsampling projection layer brings its features to D channels at pixel resolution. Keyframe LiDAR points are
projected into the images (back-projection) to form point-pixel pairs; each point's feature is read from the
LiDAR BEV at its cell and projected to D. InfoNCE from point to pixel over ``num_pairs`` sampled pairs.
"""
import copy
from typing import Dict, List, Optional, Sequence

import torch
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from torch import Tensor, nn

from clap_plugin.models.bevfusion.detector import CLAPBEVFusion
from clap_plugin.models.pretrain.ray_builder import pixel_projection

from .contrastive import (UpsamplingProjection, contrastive_accuracy, info_nce, keyframe_points,
                          point_pixel_pairs, sample_bev_at_points, subsample)


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


@MODELS.register_module()
class PPKTPretrainer(PairwisePretrainerMixin, CLAPBEVFusion):
    """PPKT on the BEVFusion encoders (submodule names of :class:`CLAPBEVFusion`; only the LiDAR branch is
    trained, the camera branch is exported as initialised).

    Args:
        teacher_channels: channels of the teacher feature level used.
        lidar_channels: channels of the LiDAR BEV (``pts_middle_encoder`` output).
        teacher: config of the frozen 2D teacher; None: a copy of ``img_backbone`` whose weights are copied
            from the image backbone as initialised (after ``init_weights``).
        teacher_level: which output of a multi-level teacher to use (0: the finest).
        embed_dim: D, the shared embedding width.
        num_pairs: point-pixel pairs sampled per iteration (over the batch).
        temperature: InfoNCE tau (0.07 outdoors; the original indoor paper used 0.04).
        keyframe_dim: column of the sweep time lag (pairs use keyframe points only), None if all are keyframe.
        **kwargs: encoder arguments of :class:`CLAPBEVFusion` (no ``bbox_head``).
    """

    def __init__(self, teacher_channels: int, lidar_channels: int, teacher: Optional[dict] = None,
                 teacher_level: int = 0, embed_dim: int = 64, num_pairs: int = 4096, temperature: float = 0.07,
                 keyframe_dim: Optional[int] = 4, **kwargs) -> None:
        if kwargs.get('bbox_head') is not None:
            raise ValueError('PPKTPretrainer is label-free: bbox_head must be None')
        super().__init__(**kwargs)
        if not (self.with_lidar and self.with_camera):
            raise ValueError('PPKT pairs LiDAR points with image pixels: it needs both branches')
        if num_pairs < 2:
            raise ValueError(f'num_pairs must be >= 2, got {num_pairs}')
        if teacher is None:
            teacher = copy.deepcopy(kwargs['img_backbone'])
            self.teacher_from_img_backbone = True
        else:
            self.teacher_from_img_backbone = False
        self.teacher = MODELS.build(teacher)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.teacher.eval()
        self.teacher_level = int(teacher_level)
        self.pixel_projection = UpsamplingProjection(int(teacher_channels), int(embed_dim))
        self.point_projection = nn.Linear(int(lidar_channels), int(embed_dim))
        self.num_pairs = int(num_pairs)
        self.temperature = float(temperature)
        self.keyframe_dim = keyframe_dim

    def init_weights(self) -> None:
        super().init_weights()
        if self.teacher_from_img_backbone:
            self.teacher.load_state_dict(self.img_backbone.state_dict())

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # frozen: no dropout / drop-path / BN statistics updates
        return self

    @torch.no_grad()
    def teacher_features(self, imgs: Tensor) -> Tensor:
        """(B, N, 3, H, W) -> (B * N, C_t, h, w) frozen teacher features."""
        x = self.teacher(imgs.flatten(0, 1))
        if isinstance(x, (list, tuple)):
            x = x[self.teacher_level]
        return x.float()

    def loss(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample], **kwargs) -> dict:
        metas = [s.metainfo for s in batch_data_samples]
        points: List[Tensor] = list(batch_inputs_dict['points'])
        imgs: Optional[Tensor] = batch_inputs_dict.get('imgs')
        if imgs is None:
            raise KeyError("PPKT: batch inputs lack 'imgs'")
        n_cam, img_shape = imgs.shape[1], imgs.shape[-2:]
        cams = self.camera_matrices(metas, n_cam, imgs)
        pairs = self.gather_pairs(points, cams, n_cam, img_shape, self.keyframe_dim)
        keep = subsample(pairs['xyz'].shape[0], self.num_pairs, imgs.device)
        if keep.numel() < 2:
            raise RuntimeError(f'PPKT: only {keep.numel()} LiDAR points project into the images of this batch '
                               f'(samples {[m.get("sample_idx") for m in metas]}); check the calibration')
        pairs = {k: v[keep] for k, v in pairs.items()}

        lidar_bev = self.extract_pts_feat(points)
        point_feats = self.point_projection(self.bev_point_features(lidar_bev, pairs['batch_idx'], pairs['xyz']))
        pixel_feats = self.pixel_projection.sample(self.teacher_features(imgs), pairs['img_idx'], pairs['uv'],
                                                   img_shape)
        return dict(loss_ppkt=info_nce(point_feats, pixel_feats, self.temperature),
                    ppkt_acc=contrastive_accuracy(point_feats, pixel_feats),
                    ppkt_pairs=lidar_bev.new_tensor(float(keep.numel())))

    def predict(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample], **kwargs):
        raise NotImplementedError('PPKTPretrainer has no detection output; export its encoders with '
                                  'tools/export_pretrained.py and fine-tune a CLAPBEVFusion detector')

"""The shared part of the point-pixel pre-trainers (projects/PPKT, SimIPU, CMCR): a BEVFusion model's point-pixel
pairs for a batch, the BEV features at their points and the frozen 2D teacher of the distillation baselines."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

from clap_plugin.models.geometry.keyframe import keyframe_points
from clap_plugin.models.geometry.projection import pixel_projection

from .pairs import point_pixel_pairs
from .point_features import sample_bev_at_points
from .teacher import build_frozen_teacher, teacher_summary


class PairwisePretrainerMixin:
    """Helpers shared by the point-pixel baselines, mixed into a :class:`BEVFusionPretrainer` (they need both
    branches and its point-cloud range). A distillation baseline calls :meth:`build_teacher` in its constructor;
    the mixin then loads the teacher at :meth:`init_weights` and keeps it in eval mode."""

    def build_teacher(self, method: str, img_backbone: dict, teacher: Optional[dict], teacher_checkpoint: Optional[str],
                      random_teacher_ablation: bool, teacher_level: int) -> None:
        """Build the frozen 2D teacher of ``method`` (see :func:`build_frozen_teacher`) as ``self.teacher``."""
        self.teacher, self.teacher_mode = build_frozen_teacher(method, img_backbone, teacher, teacher_checkpoint,
                                                               random_teacher_ablation)
        self.teacher_method = method
        self.teacher_checkpoint = teacher_checkpoint
        self.teacher_level = int(teacher_level)

    def init_weights(self) -> None:
        super().init_weights()  # loads a checkpoint teacher through its Pretrained init_cfg
        if getattr(self, 'teacher', None) is None:
            return
        if self.teacher_mode == 'random_ablation':
            self.teacher.load_state_dict(self.img_backbone.state_dict())
        print_log(teacher_summary(self.teacher_method, self.teacher_mode, self.teacher_checkpoint), logger='current')

    def train(self, mode: bool = True):
        super().train(mode)
        if getattr(self, 'teacher', None) is not None:
            self.teacher.eval()  # frozen: no dropout / drop-path / BN statistics updates
        return self

    @torch.no_grad()
    def teacher_features(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) images -> (N, C_t, h, w) frozen teacher features of level ``teacher_level``."""
        x = self.teacher(images)
        if isinstance(x, (list, tuple)):
            x = x[self.teacher_level]
        return x.float()

    @staticmethod
    def batch_inputs(batch_inputs_dict: dict, batch_data_samples: Sequence,
                     method: str) -> Tuple[List[dict], List[Tensor], Tensor]:
        """(metas, points: B x (P_b, C), imgs (B, N_cam, 3, H, W)) of a batch; a KeyError naming ``method``
        when the batch has no images."""
        metas = [s.metainfo for s in batch_data_samples]
        points: List[Tensor] = list(batch_inputs_dict['points'])
        imgs: Optional[Tensor] = batch_inputs_dict.get('imgs')
        if imgs is None:
            raise KeyError(f"{method}: batch inputs lack 'imgs'")
        return metas, points, imgs

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

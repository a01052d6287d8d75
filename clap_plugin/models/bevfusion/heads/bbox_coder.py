"""nuScenes box coder of the TransFusion head (BEVFusion's parameterisation).

A LiDAR box ``(x, y, z_bottom, dx, dy, dz, yaw[, vx, vy])`` is coded as
``(cx, cy, z_gravity, log dx, log dy, log dz, sin yaw, cos yaw[, vx, vy])`` where ``cx, cy`` are
continuous BEV feature-map cell coordinates, ``cx = (x - pc_range[0]) / (out_size_factor * voxel_x)``.
"""
from typing import Dict, List, Optional, Sequence

import torch
from mmdet.models.task_modules import BaseBBoxCoder
from mmdet3d.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class CLAPTransFusionBBoxCoder(BaseBBoxCoder):
    """Encode / decode boxes for :class:`CLAPTransFusionHead`.

    Args:
        pc_range: ``[x_min, y_min]`` of the point-cloud range (metres).
        out_size_factor: BEV feature stride in voxels.
        voxel_size: ``[vx, vy]`` voxel size (metres).
        post_center_range: ``[x0, y0, z0, x1, y1, z1]``; decoded boxes whose centre lies outside are
            dropped when ``filter=True``.
        score_threshold: boxes with score ``<=`` this are dropped when ``filter=True``.
        code_size: 8 (no velocity) or 10 (with velocity).
    """

    def __init__(self,
                 pc_range: Sequence[float],
                 out_size_factor: int,
                 voxel_size: Sequence[float],
                 post_center_range: Optional[Sequence[float]] = None,
                 score_threshold: Optional[float] = None,
                 code_size: int = 8) -> None:
        super().__init__()
        if code_size not in (8, 10):
            raise ValueError(f'code_size must be 8 or 10, got {code_size}')
        if post_center_range is not None and len(post_center_range) != 6:
            raise ValueError('post_center_range must have 6 values, got '
                             f'{post_center_range}')
        self.pc_range = [float(v) for v in pc_range[:2]]
        self.out_size_factor = out_size_factor
        self.voxel_size = [float(v) for v in voxel_size[:2]]
        self.post_center_range = (None if post_center_range is None else
                                  [float(v) for v in post_center_range])
        self.score_threshold = score_threshold
        self.code_size = code_size

    def encode(self, dst_boxes: Tensor) -> Tensor:
        """Boxes (N, 7 or 9), bottom centre, to regression targets (N, code_size)."""
        cell_x = self.out_size_factor * self.voxel_size[0]
        cell_y = self.out_size_factor * self.voxel_size[1]
        parts = [
            (dst_boxes[:, 0:1] - self.pc_range[0]) / cell_x,
            (dst_boxes[:, 1:2] - self.pc_range[1]) / cell_y,
            dst_boxes[:, 2:3] + 0.5 * dst_boxes[:, 5:6],
            dst_boxes[:, 3:6].log(),
            torch.sin(dst_boxes[:, 6:7]),
            torch.cos(dst_boxes[:, 6:7]),
        ]
        if self.code_size == 10:
            if dst_boxes.shape[1] < 9:
                raise ValueError('code_size=10 needs boxes with velocity (N, 9), got '
                                 f'{tuple(dst_boxes.shape)}')
            parts.append(dst_boxes[:, 7:9])
        return torch.cat(parts, dim=1)

    def decode(self,
               heatmap: Tensor,
               rot: Tensor,
               dim: Tensor,
               center: Tensor,
               height: Tensor,
               vel: Optional[Tensor],
               filter: bool = False) -> List[Dict[str, Tensor]]:
        """Decode head outputs to metric boxes; inputs are not modified.

        Args:
            heatmap: (B, num_classes, P) class scores.
            rot: (B, 2, P) ``(sin, cos)`` of yaw.
            dim: (B, 3, P) log sizes.
            center: (B, 2, P) BEV centre in feature cells.
            height: (B, 1, P) gravity-centre z (metres).
            vel: (B, 2, P) velocity or None.
            filter: apply ``score_threshold`` and ``post_center_range``.

        Returns:
            Per sample a dict with ``bboxes`` (K, 7 or 9, bottom centre), ``scores`` (K,),
            ``labels`` (K,).
        """
        scores, labels = heatmap.max(dim=1)
        x = center[:, 0:1] * self.out_size_factor * self.voxel_size[0] + self.pc_range[0]
        y = center[:, 1:2] * self.out_size_factor * self.voxel_size[1] + self.pc_range[1]
        size = dim.exp()
        z = height - 0.5 * size[:, 2:3]
        yaw = torch.atan2(rot[:, 0:1], rot[:, 1:2])
        parts = [x, y, z, size, yaw]
        if vel is not None:
            parts.append(vel)
        boxes = torch.cat(parts, dim=1).permute(0, 2, 1)  # (B, P, 7|9)

        keep = torch.ones_like(scores, dtype=torch.bool)
        if filter:
            if self.score_threshold is not None:
                keep &= scores > self.score_threshold
            if self.post_center_range is not None:
                rng = boxes.new_tensor(self.post_center_range)
                keep &= (boxes[..., :3] >= rng[:3]).all(-1)
                keep &= (boxes[..., :3] <= rng[3:]).all(-1)
        return [
            dict(bboxes=boxes[i][keep[i]], scores=scores[i][keep[i]],
                 labels=labels[i][keep[i]]) for i in range(heatmap.shape[0])
        ]

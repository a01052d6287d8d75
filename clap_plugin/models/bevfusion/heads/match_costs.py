"""Box match costs of the 3D Hungarian assigner (the classification cost is mmdet's ``FocalLossCost``)."""
from typing import Mapping

import torch
from mmdet3d.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class CLAPBBoxBEVL1Cost:
    """L1 distance of BEV centres normalised by the point-cloud range, times ``weight``.

    Args:
        weight: cost weight.
    """

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def __call__(self, bboxes: Tensor, gt_bboxes: Tensor, train_cfg: Mapping) -> Tensor:
        """(N, >=2) predicted, (M, >=2) gt boxes -> (N, M) cost.

        ``train_cfg['point_cloud_range']`` = ``[x0, y0, z0, x1, y1, z1]`` sets the normalisation.
        """
        if 'point_cloud_range' not in train_cfg:
            raise KeyError('CLAPBBoxBEVL1Cost needs train_cfg["point_cloud_range"]')
        pcr = train_cfg['point_cloud_range']
        start = bboxes.new_tensor(pcr[0:2])
        extent = bboxes.new_tensor(pcr[3:5]) - start
        pred_xy = (bboxes[:, :2] - start) / extent
        gt_xy = (gt_bboxes[:, :2].to(bboxes) - start) / extent
        return torch.cdist(pred_xy, gt_xy, p=1) * self.weight


@TASK_UTILS.register_module()
class CLAPIoU3DCost:
    """Negative IoU times ``weight`` (higher overlap, lower cost).

    Args:
        weight: cost weight.
    """

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def __call__(self, iou: Tensor) -> Tensor:
        """(N, M) IoU -> (N, M) cost."""
        return -iou * self.weight

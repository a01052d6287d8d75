"""One-to-one assignment of proposals to ground-truth boxes by the Hungarian algorithm."""
from typing import Mapping

import torch
from mmdet.models.task_modules import AssignResult, BaseAssigner
from mmdet3d.registry import TASK_UTILS
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor


@TASK_UTILS.register_module()
class CLAPHungarianAssigner3D(BaseAssigner):
    """Minimise ``cls_cost + reg_cost + iou_cost`` over one-to-one matchings.

    Args:
        cls_cost: classification cost config, called as ``cost(pred_instances, gt_instances)`` with
            ``pred_instances.scores`` (N, C) logits and ``gt_instances.labels`` (M,).
        reg_cost: BEV box cost config, called as ``cost(bboxes, gt_bboxes, train_cfg)``.
        iou_cost: IoU cost config, called as ``cost(iou)``.
        iou_calculator: IoU calculator config, called as ``calc(bboxes, gt_bboxes)``.
    """

    def __init__(self,
                 cls_cost: dict = dict(type='mmdet.FocalLossCost', weight=0.15),
                 reg_cost: dict = dict(type='CLAPBBoxBEVL1Cost', weight=0.25),
                 iou_cost: dict = dict(type='CLAPIoU3DCost', weight=0.25),
                 iou_calculator: dict = dict(type='CLAPBboxOverlaps3D')) -> None:
        self.cls_cost = TASK_UTILS.build(cls_cost)
        self.reg_cost = TASK_UTILS.build(reg_cost)
        self.iou_cost = TASK_UTILS.build(iou_cost)
        self.iou_calculator = TASK_UTILS.build(iou_calculator)

    def assign(self, bboxes: Tensor, gt_bboxes: Tensor, gt_labels: Tensor,
               cls_pred: Tensor, train_cfg: Mapping) -> AssignResult:
        """Assign proposals to gt boxes.

        Args:
            bboxes: (N, >=7) decoded proposal boxes (bottom centre).
            gt_bboxes: (M, >=7) gt boxes (bottom centre).
            gt_labels: (M,) gt class indices.
            cls_pred: (1, C, N) or (C, N) classification logits of the proposals.
            train_cfg: head train config (``point_cloud_range`` for the BEV cost).

        Returns:
            ``AssignResult`` with ``gt_inds`` (N,) (0: background, i+1: gt i), ``max_overlaps`` (N,)
            (IoU with the matched gt, 0 otherwise) and ``labels`` (N,) (-1 for background).
        """
        num_gts, num_bboxes = gt_bboxes.shape[0], bboxes.shape[0]
        device = bboxes.device
        gt_inds = torch.zeros(num_bboxes, dtype=torch.long, device=device)
        labels = torch.full((num_bboxes, ), -1, dtype=torch.long, device=device)
        overlaps = bboxes.new_zeros(num_bboxes)
        if num_gts == 0 or num_bboxes == 0:
            return AssignResult(num_gts, gt_inds, overlaps, labels=labels)

        gt_bboxes = gt_bboxes.to(bboxes)
        gt_labels = gt_labels.to(device).long()
        scores = cls_pred[0] if cls_pred.dim() == 3 else cls_pred  # (C, N)
        cls_cost = self.cls_cost(
            InstanceData(scores=scores.T), InstanceData(labels=gt_labels))
        reg_cost = self.reg_cost(bboxes, gt_bboxes, train_cfg)
        iou = self.iou_calculator(bboxes, gt_bboxes)
        cost = cls_cost + reg_cost + self.iou_cost(iou)

        rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
        rows = torch.as_tensor(rows, dtype=torch.long, device=device)
        cols = torch.as_tensor(cols, dtype=torch.long, device=device)
        gt_inds[rows] = cols + 1
        labels[rows] = gt_labels[cols]
        overlaps[rows] = iou[rows, cols].to(overlaps)
        return AssignResult(num_gts, gt_inds, overlaps, labels=labels)

"""Gaussian BEV heatmap targets (CenterPoint / TransFusion style) in BEVFusion's (X, Y) layout."""
from typing import Mapping

import torch
from mmdet3d.models.utils import draw_heatmap_gaussian, gaussian_radius  # radius needs tensors
from torch import Tensor


def gaussian_heatmap_targets(gt_bboxes: Tensor, gt_labels: Tensor, num_classes: int,
                             train_cfg: Mapping) -> Tensor:
    """Draw one Gaussian per gt box at its BEV centre cell, in the channel of its class.

    Args:
        gt_bboxes: (M, >=7) LiDAR boxes ``(x, y, z, dx, dy, dz, yaw, ...)``.
        gt_labels: (M,) class indices.
        num_classes: number of heatmap channels.
        train_cfg: needs ``point_cloud_range``, ``voxel_size``, ``grid_size``, ``out_size_factor``,
            ``gaussian_overlap``, ``min_radius``.

    Returns:
        (num_classes, X, Y) targets in [0, 1], with X = grid_size[0] // out_size_factor.
    """
    osf = train_cfg['out_size_factor']
    x_size = int(train_cfg['grid_size'][0]) // osf
    y_size = int(train_cfg['grid_size'][1]) // osf
    vx, vy = float(train_cfg['voxel_size'][0]), float(train_cfg['voxel_size'][1])
    x0, y0 = float(train_cfg['point_cloud_range'][0]), float(train_cfg['point_cloud_range'][1])
    heatmap = gt_bboxes.new_zeros((num_classes, x_size, y_size))
    boxes = gt_bboxes.detach().float().cpu()
    for box, label in zip(boxes, gt_labels.tolist()):
        size_x = float(box[3]) / vx / osf
        size_y = float(box[4]) / vy / osf
        if size_x <= 0 or size_y <= 0:
            continue
        radius = gaussian_radius((torch.tensor(size_y), torch.tensor(size_x)),
                                 min_overlap=train_cfg['gaussian_overlap'])
        radius = max(int(train_cfg['min_radius']), int(radius))
        cx = (float(box[0]) - x0) / vx / osf
        cy = (float(box[1]) - y0) / vy / osf
        if not (0 <= cx < x_size and 0 <= cy < y_size):
            continue
        # draw_heatmap_gaussian indexes heatmap[row, col] with center = (col, row); rows are x here
        center = torch.tensor([int(cy), int(cx)], dtype=torch.int32)
        draw_heatmap_gaussian(heatmap[label], center, radius)
    return heatmap

"""Box coder, 3D IoU, Hungarian assigner and query initialisation of the TransFusion head."""
import math

import numpy as np
import pytest
import torch
from mmdet3d.registry import TASK_UTILS

from clap_plugin.models.bevfusion.heads import CLAPHungarianAssigner3D, CLAPTransFusionBBoxCoder, lidar_bbox_overlaps_3d
from clap_plugin.models.bevfusion.heads.circle_nms import circle_nms_keep
from clap_plugin.models.bevfusion.heads.heatmap_targets import gaussian_heatmap_targets
from clap_plugin.models.bevfusion.heads.query_init import bev_cell_centers, keep_local_maxima, top_proposals

PC_RANGE = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]


def _coder(**kw):
    cfg = dict(type='CLAPTransFusionBBoxCoder', pc_range=[-54.0, -54.0], out_size_factor=8,
               voxel_size=[0.075, 0.075], post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
               score_threshold=0.0, code_size=10)
    cfg.update(kw)
    coder = TASK_UTILS.build(cfg)
    assert isinstance(coder, CLAPTransFusionBBoxCoder)
    return coder


def _random_boxes(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 90 - 45
    z = torch.rand(n, 1, generator=g) * 2 - 2
    dims = torch.rand(n, 3, generator=g) * 4 + 0.5
    yaw = torch.rand(n, 1, generator=g) * 2 * math.pi - math.pi
    vel = torch.randn(n, 2, generator=g)
    return torch.cat([xy, z, dims, yaw, vel], dim=1)


def test_box_coder_known_encoding():
    coder = _coder()
    box = torch.tensor([[-54.0 + 0.6 * 10.5, -54.0 + 0.6 * 3.25, -1.0, 2.0, 4.0, 1.5, 0.5, 1.0,
                         -2.0]])
    t = coder.encode(box)[0]
    expected = [10.5, 3.25, -1.0 + 0.75, math.log(2.0), math.log(4.0), math.log(1.5),
                math.sin(0.5), math.cos(0.5), 1.0, -2.0]
    assert torch.allclose(t, torch.tensor(expected), atol=1e-5)


def test_box_coder_round_trip():
    coder = _coder()
    boxes = _random_boxes(50)
    t = coder.encode(boxes).T[None]  # (1, 10, N)
    inputs = dict(center=t[:, 0:2].clone(), height=t[:, 2:3].clone(), dim=t[:, 3:6].clone(),
                  rot=t[:, 6:8].clone(), vel=t[:, 8:10].clone())
    frozen = {k: v.clone() for k, v in inputs.items()}
    heat = torch.rand(1, 10, 50)
    out = coder.decode(heat, inputs['rot'], inputs['dim'], inputs['center'], inputs['height'],
                       inputs['vel'])[0]
    assert torch.allclose(out['bboxes'], boxes, atol=1e-4)
    assert torch.equal(out['labels'], heat[0].argmax(0))
    assert torch.allclose(out['scores'], heat[0].max(0).values)
    for k in inputs:  # decode must not modify its inputs
        assert torch.equal(inputs[k], frozen[k]), k


def test_box_coder_filter():
    coder = _coder(score_threshold=0.3, post_center_range=[-10, -10, -10, 10, 10, 10])
    boxes = torch.tensor([[0.0, 0, 0, 1, 1, 1, 0, 0, 0], [20.0, 0, 0, 1, 1, 1, 0, 0, 0],
                          [5.0, 5, 0, 1, 1, 1, 0, 0, 0]])
    t = coder.encode(boxes).T[None]
    heat = torch.tensor([[[0.9, 0.9, 0.2]]])
    out = coder.decode(heat, t[:, 6:8], t[:, 3:6], t[:, 0:2], t[:, 2:3], t[:, 8:10],
                       filter=True)[0]
    assert out['bboxes'].shape[0] == 1
    assert torch.allclose(out['bboxes'][0, :3], torch.tensor([0.0, 0.0, 0.0]), atol=1e-5)


def _iou_reference(a, b, step=0.02):
    """Grid-sampled 3D IoU of two boxes (x, y, z_bottom, dx, dy, dz, yaw)."""
    def inside(box, xs, ys):
        c, s = math.cos(box[6]), math.sin(box[6])
        lx = (xs - box[0]) * c + (ys - box[1]) * s
        ly = -(xs - box[0]) * s + (ys - box[1]) * c
        return (np.abs(lx) <= box[3] / 2) & (np.abs(ly) <= box[4] / 2)
    r = max(a[3], a[4], b[3], b[4])
    x0, x1 = min(a[0], b[0]) - r, max(a[0], b[0]) + r
    y0, y1 = min(a[1], b[1]) - r, max(a[1], b[1]) + r
    xs, ys = np.meshgrid(np.arange(x0, x1, step), np.arange(y0, y1, step))
    ia, ib = inside(a, xs, ys), inside(b, xs, ys)
    inter_bev = (ia & ib).sum() * step * step
    inter_h = max(0.0, min(a[2] + a[5], b[2] + b[5]) - max(a[2], b[2]))
    inter = inter_bev * inter_h
    return inter / (a[3] * a[4] * a[5] + b[3] * b[4] * b[5] - inter)


def test_iou3d_known_answers():
    yaw = math.radians(30)
    a = [1.0, 2.0, 0.0, 4.0, 1.0, 2.0, yaw]
    # shifted 2 m along the heading (and 1 mm sideways: mmcv's kernel returns 0 for exactly
    # collinear rotated edges)
    shifted = [1.0 + 2 * math.cos(yaw) - 1e-3 * math.sin(yaw),
               2.0 + 2 * math.sin(yaw) + 1e-3 * math.cos(yaw), 0.0, 4.0, 1.0, 2.0, yaw]
    raised = [1.0, 2.0, 1.0, 4.0, 1.0, 2.0, yaw]
    far = [30.0, 2.0, 0.0, 4.0, 1.0, 2.0, yaw]
    iou = lidar_bbox_overlaps_3d(torch.tensor([a]), torch.tensor([a, shifted, raised, far]))
    # along the heading the overlap is 2 x 0.999 of two 4 x 1 boxes; half height overlap: 4 / 12
    along = 2 * 0.999 / (8 - 2 * 0.999)
    assert torch.allclose(iou[0], torch.tensor([1.0, along, 1 / 3, 0.0]), atol=1e-4)
    # the yaw sign matters: the same shift across a box turned the other way barely overlaps
    mirrored = lidar_bbox_overlaps_3d(torch.tensor([a[:6] + [-yaw]]), torch.tensor([shifted]))
    assert mirrored[0, 0] < 0.2


def test_iou3d_matches_grid_reference():
    g = torch.Generator().manual_seed(3)
    boxes1 = torch.cat([torch.rand(4, 2, generator=g) * 3, torch.rand(4, 1, generator=g),
                        torch.rand(4, 3, generator=g) * 3 + 1,
                        torch.rand(4, 1, generator=g) * 6 - 3], dim=1)
    boxes2 = boxes1[[1, 2, 3, 0]].clone()
    boxes2[:, 6] += 0.7
    boxes2[:, :2] += 0.5
    iou = lidar_bbox_overlaps_3d(boxes1, boxes2)
    assert iou.shape == (4, 4)
    for i in range(4):
        for j in range(4):
            ref = _iou_reference(boxes1[i].tolist(), boxes2[j].tolist())
            assert abs(iou[i, j].item() - ref) < 0.02, (i, j, iou[i, j].item(), ref)
    assert lidar_bbox_overlaps_3d(boxes1[:0], boxes2).shape == (0, 4)


def test_hungarian_assigner_recovers_matching():
    assigner = TASK_UTILS.build(dict(
        type='CLAPHungarianAssigner3D',
        cls_cost=dict(type='mmdet.FocalLossCost', gamma=2.0, alpha=0.25, weight=0.15),
        reg_cost=dict(type='CLAPBBoxBEVL1Cost', weight=0.25),
        iou_cost=dict(type='CLAPIoU3DCost', weight=0.25),
        iou_calculator=dict(type='CLAPBboxOverlaps3D')))
    assert isinstance(assigner, CLAPHungarianAssigner3D)
    gt = torch.tensor([[0.0, 0.0, -1.0, 4.0, 2.0, 1.5, 0.0],
                       [10.0, 5.0, -1.0, 1.0, 1.0, 1.8, 1.0],
                       [-20.0, 8.0, -1.0, 0.5, 0.5, 1.0, -0.5]])
    gt_labels = torch.tensor([0, 8, 9])
    # proposals: 6 far-away boxes and noisy copies of gt 2, 0, 1 at positions 1, 3, 4
    preds = torch.tensor([[40.0, 40.0, -1.0, 1.0, 1.0, 1.0, 0.0]]).repeat(6, 1)
    preds[:, 0] -= torch.arange(6).float() * 5
    order = {1: 2, 3: 0, 4: 1}
    for p, g in order.items():
        preds[p] = gt[g]
        preds[p, :2] += 0.05
    logits = torch.full((1, 10, 6), -4.0)
    for p, g in order.items():
        logits[0, gt_labels[g], p] = 3.0
    res = assigner.assign(preds, gt, gt_labels, logits, dict(point_cloud_range=PC_RANGE))
    expected = torch.zeros(6, dtype=torch.long)
    for p, g in order.items():
        expected[p] = g + 1
    assert torch.equal(res.gt_inds, expected)
    assert torch.equal(res.labels[expected > 0], gt_labels[expected[expected > 0] - 1])
    assert (res.labels[expected == 0] == -1).all()
    assert (res.max_overlaps[expected > 0] > 0.5).all()
    assert (res.max_overlaps[expected == 0] == 0).all()
    empty = assigner.assign(preds, gt[:0], gt_labels[:0], logits, dict(point_cloud_range=PC_RANGE))
    assert (empty.gt_inds == 0).all()


def test_bev_cell_centers_layout():
    grid = bev_cell_centers(4, 3)
    assert grid.shape == (1, 12, 2)
    ix, iy = 2, 1
    assert torch.equal(grid[0, ix * 3 + iy], torch.tensor([ix + 0.5, iy + 0.5]))


def test_local_maxima_and_top_proposals():
    heat = torch.zeros(1, 10, 6, 6)
    heat[0, 0, 2, 2] = 0.9
    heat[0, 0, 2, 3] = 0.8  # neighbour of a larger peak: suppressed
    heat[0, 1, 5, 0] = 0.7  # on the border: no full neighbourhood, suppressed (as BEVFusion)
    heat[0, 1, 3, 3] = 0.65  # isolated peak of another class: kept
    heat[0, 8, 1, 1] = 0.6  # pedestrian: exempt from suppression
    heat[0, 8, 1, 2] = 0.5
    heat[0, 9, 0, 5] = 0.2  # traffic cone on the border: exempt
    out = keep_local_maxima(heat, 3, exempt_classes=(8, 9))
    assert out[0, 0, 2, 3] == 0 and out[0, 0, 2, 2] == 0.9
    assert out[0, 1, 5, 0] == 0 and out[0, 1, 3, 3] == 0.65
    assert out[0, 8, 1, 2] == 0.5 and out[0, 9, 0, 5] == 0.2
    cls, idx = top_proposals(out.flatten(2), 5)
    assert cls.tolist() == [[0, 1, 8, 8, 9]]
    assert idx.tolist() == [[2 * 6 + 2, 3 * 6 + 3, 1 * 6 + 1, 1 * 6 + 2, 0 * 6 + 5]]
    with pytest.raises(ValueError, match='nms_kernel_size'):
        keep_local_maxima(heat, 2)


def test_gaussian_heatmap_targets_peak_position():
    cfg = dict(point_cloud_range=PC_RANGE, voxel_size=[0.075, 0.075, 0.2], grid_size=[1440, 1440, 41],
               out_size_factor=8, gaussian_overlap=0.1, min_radius=2)
    # centre in cell (ix=100, iy=30) of the 180 x 180 map, class 3
    box = torch.tensor([[-54.0 + 0.6 * 100.4, -54.0 + 0.6 * 30.7, -1.0, 4.0, 2.0, 1.5, 0.3]])
    heat = gaussian_heatmap_targets(box, torch.tensor([3]), 10, cfg)
    assert heat.shape == (10, 180, 180)
    assert heat[3, 100, 30] == 1.0
    assert heat.eq(1).sum() == 1
    assert heat[[0, 1, 2, 4, 5, 6, 7, 8, 9]].abs().sum() == 0
    assert 0 < heat[3, 101, 30] < 1 and heat[3, 100, 40] == 0


def test_circle_nms_known_answer():
    centers = torch.tensor([[0.0, 0.0], [0.3, 0.0], [5.0, 5.0], [5.2, 5.0], [0.0, 0.45]])
    scores = torch.tensor([0.5, 0.9, 0.3, 0.8, 0.4])
    keep = circle_nms_keep(centers, scores, min_dist_sq=0.175)
    # 1 suppresses 0 (0.09 <= 0.175) but not 4 (0.3^2 + 0.45^2 = 0.2925); 3 suppresses 2
    assert keep.tolist() == [1, 3, 4]
    assert circle_nms_keep(centers, scores, 0.175, max_keep=2).tolist() == [1, 3]

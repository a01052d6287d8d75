"""PPKT: InfoNCE against its definition, point-pixel pairs against the calibration, the upsampling
projection against full upsampling, the frozen teacher, and a short training run of the tiny config."""
import math
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clap_plugin.models.contrastive import (
    UpsamplingProjection,
    bev_cell_index,
    info_nce,
    one_per_group,
    point_pixel_pairs,
    sample_bev_at_points,
    sample_pixel_features,
)
from clap_plugin.models.geometry import pixel_projection
from tests.helpers.baselines import ROOT, export_and_check_finetune_keys, run_tiny, write_teacher


def _naive_info_nce(q, k, tau):
    q = [[v / math.sqrt(sum(u * u for u in x)) for v in x] for x in q.tolist()]
    k = [[v / math.sqrt(sum(u * u for u in x)) for v in x] for x in k.tolist()]
    total = 0.0
    for i in range(len(q)):
        logits = [sum(a * b for a, b in zip(q[i], k[j])) / tau for j in range(len(k))]
        total += -(logits[i] - math.log(sum(math.exp(s) for s in logits)))
    return total / len(q)


@pytest.mark.parametrize('tau', [0.07, 0.5])
def test_info_nce_equals_naive_loop(tau):
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(9, 5, generator=g, dtype=torch.float64), torch.randn(9, 5, generator=g, dtype=torch.float64)
    assert info_nce(q, k, tau).item() == pytest.approx(_naive_info_nce(q, k, tau), rel=1e-9)
    # aligned pairs score lower than shuffled ones
    assert info_nce(q, q + 0.01 * k, tau) < info_nce(q, k, tau)
    with pytest.raises(ValueError):
        info_nce(q[:1], k[:1], tau)


def _rot_z(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _camera(yaw):
    """A camera looking along LiDAR direction ``yaw`` (camera z forward, x right, y down)."""
    cam2lidar = np.eye(4)
    forward = _rot_z(yaw) @ np.array([1.0, 0, 0])
    right = _rot_z(yaw) @ np.array([0, -1.0, 0])
    down = np.array([0, 0, -1.0])
    cam2lidar[:3, :3] = np.stack([right, down, forward], 1)
    cam2lidar[:3, 3] = [0.5, 0.1, 1.6]
    lidar2cam = np.linalg.inv(cam2lidar)
    k = np.eye(4)
    k[:3, :3] = [[300.0, 0, 176], [0, 300.0, 64], [0, 0, 1]]
    return k, lidar2cam


def test_point_pixel_pairs_are_the_projections_of_their_points():
    rng = np.random.default_rng(0)
    h, w = 128, 352
    cams = [_camera(0.0), _camera(math.pi / 2), _camera(math.pi)]
    lidar2img = np.stack([k @ l2c for k, l2c in cams])
    # image augmentation: scale 0.9, rotation 3 deg about the origin, shift; BEVFusion's p' = R p + t
    img_aug = np.tile(np.eye(4), (3, 1, 1))
    a = math.radians(3)
    img_aug[:, :2, :2] = 0.9 * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    img_aug[:, :2, 3] = [-12.0, 7.0]
    # LiDAR augmentation: rotation, scale, translation of the points
    lidar_aug = np.eye(4)
    lidar_aug[:3, :3] = 1.05 * _rot_z(0.3)
    lidar_aug[:3, 3] = [0.4, -0.2, 0.1]
    raw = rng.uniform([-30, -30, -2], [30, 30, 3], size=(3000, 3))
    aug_pts = raw @ lidar_aug[:3, :3].T + lidar_aug[:3, 3]

    proj = pixel_projection(torch.tensor(lidar2img), torch.tensor(img_aug), torch.tensor(lidar_aug))
    pairs = point_pixel_pairs(torch.tensor(aug_pts), proj, (h, w))
    assert pairs['point_idx'].numel() > 100

    expected = set()
    for c, (k, l2c) in enumerate(cams):
        pc = (l2c @ np.c_[raw, np.ones(len(raw))].T).T[:, :3]  # original points in the camera
        uvd = (k[:3, :3] @ pc.T).T
        uv = uvd[:, :2] / uvd[:, 2:3]
        uv_aug = uv @ img_aug[c, :2, :2].T + img_aug[c, :2, 3]
        inside = (pc[:, 2] > 1e-3) & (uv_aug[:, 0] >= 0) & (uv_aug[:, 0] < w) & (uv_aug[:, 1] >= 0) & \
            (uv_aug[:, 1] < h)
        for p in np.nonzero(inside)[0]:
            expected.add((c, int(p)))
        sel = pairs['cam_idx'] == c
        idx = pairs['point_idx'][sel].numpy()
        np.testing.assert_allclose(pairs['uv'][sel].numpy(), uv_aug[idx], atol=1e-6)
        np.testing.assert_allclose(pairs['depth'][sel].numpy(), pc[idx, 2], rtol=1e-9)
    got = set(zip(pairs['cam_idx'].tolist(), pairs['point_idx'].tolist()))
    assert got == expected


def test_upsampling_projection_sample_equals_full_upsampling():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(4, 6, 8, 22, generator=g, dtype=torch.float64)
    layer = UpsamplingProjection(6, 5).double()
    full = layer(feats, (128, 352))
    assert full.shape == (4, 5, 128, 352)
    img_idx = torch.randint(0, 4, (300, ), generator=g)
    uv = torch.rand(300, 2, generator=g, dtype=torch.float64) * torch.tensor([352.0, 128.0], dtype=torch.float64)
    uv[:4] = torch.tensor([[0.0, 0.0], [351.9, 127.9], [0.2, 127.5], [351.0, 0.4]], dtype=torch.float64)
    ref = full[img_idx, :, uv[:, 1].long(), uv[:, 0].long()]
    torch.testing.assert_close(layer.sample(feats, img_idx, uv, (128, 352)), ref)
    up = F.interpolate(feats, size=(128, 352), mode='bilinear', align_corners=False)
    torch.testing.assert_close(sample_pixel_features(feats, img_idx, uv, (128, 352)),
                               up[img_idx, :, uv[:, 1].long(), uv[:, 0].long()])


def test_bev_features_read_the_point_cell():
    pcr = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
    bev = torch.randn(3, 90, 90, dtype=torch.float64)
    ix, iy = torch.tensor([0, 10, 89, 45]), torch.tensor([5, 80, 0, 45])
    cx, cy = ix.double(), iy.double()
    xy = torch.stack([-54 + (cx + 0.5) * 1.2, -54 + (cy + 0.5) * 1.2], 1)
    torch.testing.assert_close(sample_bev_at_points(bev, xy, pcr), bev[:, ix, iy].t())


TINY = 'projects/PPKT/configs/ppkt_pretrain_nus_cpu-tiny.py'


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher_2d.pth')
    return path, write_teacher(path)


def test_one_pair_per_cell_and_camera():
    g = torch.Generator().manual_seed(0)
    keys = torch.tensor([5, 3, 5, 5, 9, 3, 0])
    seen = set()
    for _ in range(30):
        pick = one_per_group(keys, g)
        assert sorted(keys[pick].tolist()) == [0, 3, 5, 9]  # exactly one member of every group
        seen.add(int(pick[keys[pick] == 5]))
    assert seen == {0, 2, 3}  # a random member, not always the first
    pcr = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
    xy = torch.tensor([[-54.0, -54.0], [-52.79, -53.0], [-52.81, 53.99], [53.99, 0.0]])  # cells of 1.2 m
    assert bev_cell_index(xy, pcr, (90, 90)).tolist() == [0, 90, 89, 89 * 90 + 45]


def test_ppkt_refuses_to_build_without_a_teacher(tmp_path, teacher_ckpt):
    from mmdet3d.registry import MODELS
    from mmengine.config import Config

    from clap_plugin.models.contrastive import TeacherError
    cfg = Config.fromfile(osp.join(ROOT, TINY))
    with pytest.raises(TeacherError, match=r'model\.teacher_checkpoint=PATH'):
        MODELS.build(cfg.model)
    cfg.model.teacher_checkpoint = str(tmp_path / 'nope.pth')
    with pytest.raises(TeacherError, match='nope.pth.*does not exist'):
        MODELS.build(cfg.model)
    cfg.model.teacher_checkpoint = teacher_ckpt[0]
    cfg.model.random_teacher_ablation = True
    with pytest.raises(TeacherError, match='contradict'):
        MODELS.build(cfg.model)
    # the named ablation builds, says so in the log, and copies the image backbone as initialised
    import logging

    from mmengine.logging import MMLogger
    cfg.model.teacher_checkpoint = None
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        model = MODELS.build(cfg.model)
        model.init_weights()
    finally:
        logger.removeHandler(handler)
    text = '\n'.join(records)
    assert 'ABLATION random_teacher_ablation=True' in text and 'teacher = ABLATION' in text
    assert model.teacher_mode == 'random_ablation'
    t, b = model.teacher.state_dict(), model.img_backbone.state_dict()
    assert all(torch.equal(t[k], b[k]) for k in t)


def test_ppkt_tiny_config_trains_lidar_branch_with_frozen_teacher(synthetic_nus, tmp_path, teacher_ckpt):
    records, start, end, runner = run_tiny(TINY, synthetic_nus, tmp_path, iters=2,
                                           cfg_options={'model.teacher_checkpoint': teacher_ckpt[0]})
    model = runner.model
    assert type(model).__name__ == 'PPKTPretrainer'
    assert len(records) == 2 and all(np.isfinite(r['loss_ppkt']) for r in records)
    assert 100 < records[0]['ppkt_pairs'] <= 1024
    # the teacher holds the checkpoint's weights (not the image backbone's), and stays frozen
    teacher = {k[len('teacher.'):]: v for k, v in start.items() if k.startswith('teacher.')}
    assert teacher.keys() == teacher_ckpt[1].keys()
    assert all(torch.equal(teacher[k], teacher_ckpt[1][k]) for k in teacher)
    assert not all(torch.equal(teacher[k], start['img_backbone.' + k]) for k in teacher if 'weight' in k)
    assert all(torch.equal(start[k], end[k]) for k in start if k.startswith('teacher.'))
    assert not model.teacher.training and all(not p.requires_grad for p in model.teacher.parameters())
    # the LiDAR encoder and both projections learn
    for prefix in ('pts_middle_encoder.', 'point_projection.', 'pixel_projection.'):
        assert any(not torch.equal(start[k], end[k]) for k in start if k.startswith(prefix)), prefix
    # the export carries only the trained LiDAR encoder: the image backbone keeps the fine-tune's own init
    export_and_check_finetune_keys(osp.join(str(tmp_path), 'iter_2.pth'), str(tmp_path / 'enc.pth'),
                                   ('teacher', 'pixel_projection', 'point_projection'),
                                   ('pts_middle_encoder', ))


def _batch(runner):
    model = runner.model
    data = model.data_preprocessor(next(iter(runner.train_dataloader)), training=True)
    return data['inputs'], data['data_samples']


def test_shuffled_pairs_raise_the_loss_of_a_trained_model(synthetic_nus, tmp_path, teacher_ckpt):
    """After a few steps the model's InfoNCE on its true pairs is well below that on shuffled pairs (it learnt
    the correspondence), and ``loss`` is InfoNCE of exactly those pairs, one per (cell, camera)."""
    import random

    from clap_plugin.models.contrastive import bev_cell_index as cell_of
    random.seed(0)
    np.random.seed(0)  # the pipeline's augmentations: the same batches whatever ran before
    _, _, _, runner = run_tiny(TINY, synthetic_nus, tmp_path, iters=10,
                               cfg_options={'model.teacher_checkpoint': teacher_ckpt[0],
                                            'optim_wrapper.optimizer.lr': 3e-3})
    model = runner.model
    model.train()  # batch statistics, as in the training step (the running ones barely moved in 10 steps)
    inputs, samples = _batch(runner)
    with torch.no_grad():
        torch.manual_seed(5)
        p, x, pairs = model.pair_features(inputs, samples)
        torch.manual_seed(5)
        loss = model.loss(inputs, samples)['loss_ppkt']
    true = info_nce(p, x, model.temperature)
    torch.testing.assert_close(loss, true)
    shuffled = torch.stack([info_nce(p, x[torch.randperm(x.shape[0])], model.temperature) for _ in range(3)])
    assert true < shuffled.min() - 0.08, (true, shuffled)  # measured gaps 0.13-0.29
    bev = model.extract_pts_feat(list(inputs['points']))
    cells = cell_of(pairs['xyz'][:, :2], model.point_cloud_range, bev.shape[-2:])
    keys = pairs['img_idx'] * bev.shape[-2] * bev.shape[-1] + cells
    assert torch.unique(keys).numel() == keys.numel()  # no two anchors share a (camera, cell)

"""Global rot/scale/trans and BEV flips: points, boxes and lidar_aug_matrix stay consistent, and an
augmented point projected with lidar2img / lidar_aug_matrix / img_aug_matrix lands on its old pixel."""
import numpy as np
import pytest
import torch
from mmdet3d.datasets.transforms import Pack3DDetInputs
from mmdet3d.structures import LiDARInstance3DBoxes
from mmdet3d.structures.points import LiDARPoints

import clap_plugin  # noqa: F401  (registers the transforms)
from clap_plugin.datasets.transforms import CLAPBEVFlip3D, CLAPGlobalRotScaleTrans, CLAPImageAug3D
from tests.helpers.cameras import front_camera


def make_results(seed=0):
    rng = np.random.default_rng(seed)
    pts = np.concatenate([
        np.stack([rng.uniform(5, 40, 500), rng.uniform(-15, 15, 500), rng.uniform(-1.5, 2, 500)],
                 axis=1),
        rng.uniform(0, 1, (500, 2))
    ], axis=1).astype(np.float32)
    boxes = torch.tensor([[10.0, 2.0, -1.5, 4.0, 1.8, 1.6, 0.3, 1.5, -0.5],
                          [25.0, -6.0, -1.0, 0.6, 0.7, 1.7, -2.0, 0.2, 0.4]])
    cam2img, lidar2cam, lidar2img = front_camera()
    return dict(points=LiDARPoints(torch.from_numpy(pts), points_dim=5),
                gt_bboxes_3d=LiDARInstance3DBoxes(boxes, box_dim=9),
                gt_labels_3d=np.array([0, 8]),
                img=[np.zeros((900, 1600, 3), np.float32)],
                cam2img=cam2img[None], lidar2cam=lidar2cam[None], lidar2img=lidar2img[None])


def apply(mat, xyz):
    return xyz @ mat[:3, :3].T + mat[:3, 3]


def check_consistent(before, after):
    """Points, boxes and camera projection after augmentation agree with lidar_aug_matrix."""
    a = after['lidar_aug_matrix'].astype(np.float64)
    old_xyz = before['points'].tensor[:, :3].numpy().astype(np.float64)
    new_xyz = after['points'].tensor[:, :3].numpy().astype(np.float64)
    assert np.allclose(new_xyz, apply(a, old_xyz), atol=1e-3)
    assert np.allclose(after['points'].tensor[:, 3:].numpy(), before['points'].tensor[:, 3:].numpy())

    old_c = before['gt_bboxes_3d'].gravity_center.numpy().astype(np.float64)
    new_c = after['gt_bboxes_3d'].gravity_center.numpy().astype(np.float64)
    assert np.allclose(new_c, apply(a, old_c), atol=1e-3)
    lin = a[:2, :2]
    scale = np.sqrt(abs(np.linalg.det(lin)))
    old_t, new_t = before['gt_bboxes_3d'].tensor.numpy(), after['gt_bboxes_3d'].tensor.numpy()
    assert np.allclose(new_t[:, 3:6], old_t[:, 3:6] * scale, atol=1e-4)
    heading = np.stack([np.cos(old_t[:, 6]), np.sin(old_t[:, 6])], axis=1) @ lin.T / scale
    new_heading = np.stack([np.cos(new_t[:, 6]), np.sin(new_t[:, 6])], axis=1)
    assert np.allclose(heading, new_heading, atol=1e-4)
    assert np.allclose(new_t[:, 7:9], old_t[:, 7:9] @ lin.T, atol=1e-4)

    # camera: augmented points through inv(lidar_aug), lidar2img, img_aug hit the original pixels
    l2i = before['lidar2img'][0]
    img_aug = after.get('img_aug_matrix', np.eye(4)[None])[0].astype(np.float64)
    h = apply(l2i, old_xyz)
    old_px = h[:, :2] / h[:, 2:3]
    h = apply(l2i, apply(np.linalg.inv(a), new_xyz))
    new_px = h[:, :2] / h[:, 2:3]
    new_px = new_px @ img_aug[:2, :2].T + img_aug[:2, 3]
    old_px = old_px @ img_aug[:2, :2].T + img_aug[:2, 3]
    assert np.abs(new_px - old_px).max() < 0.05
    # lidar2img itself is the calibration and is left unchanged
    assert np.allclose(after['lidar2img'], before['lidar2img'])


def clone(results):
    out = dict(results)
    out['points'] = results['points'].clone()
    out['gt_bboxes_3d'] = results['gt_bboxes_3d'].clone()
    return out


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_global_rot_scale_trans(seed):
    np.random.seed(seed)
    before = make_results(seed)
    t = CLAPGlobalRotScaleTrans(rot_range=[-0.78539816, 0.78539816],
                                scale_ratio_range=[0.9, 1.1], translation_std=0.5)
    after = t(clone(before))
    assert after['transformation_3d_flow'] == ['R', 'T', 'S']
    assert 0.9 <= after['pcd_scale_factor'] <= 1.1
    assert not np.allclose(after['lidar_aug_matrix'], np.eye(4))
    # rotation -> translation -> scaling
    s, angle, trans = after['pcd_scale_factor'], after['pcd_rotation_angle'], after['pcd_trans']
    c, sn = np.cos(angle), np.sin(angle)
    expected = np.eye(4)
    expected[:3, :3] = s * np.array([[c, -sn, 0], [sn, c, 0], [0, 0, 1]])
    expected[:3, 3] = s * trans
    assert np.allclose(after['lidar_aug_matrix'], expected, atol=1e-5)
    check_consistent(before, after)


@pytest.mark.parametrize('horizontal,vertical', [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)])
def test_bev_flip(horizontal, vertical):
    before = make_results()
    after = CLAPBEVFlip3D(horizontal, vertical)(clone(before))
    expected = np.diag([-1.0 if vertical else 1.0, -1.0 if horizontal else 1.0, 1.0, 1.0])
    assert np.allclose(after['lidar_aug_matrix'], expected)
    assert after['pcd_horizontal_flip'] == bool(horizontal)
    assert after['pcd_vertical_flip'] == bool(vertical)
    check_consistent(before, after)


def test_full_train_chain_and_pack():
    """Image aug + global aug + flip + pack: metas reach the data sample and stay consistent."""
    np.random.seed(5)
    before = make_results()
    results = clone(before)
    for t in (CLAPImageAug3D(final_dim=(256, 704), resize_lim=(0.38, 0.55),
                             bot_pct_lim=(0.0, 0.0), rot_lim=(-5.4, 5.4), rand_flip=True,
                             is_train=True),
              CLAPGlobalRotScaleTrans(translation_std=0.5, scale_ratio_range=[0.9, 1.1]),
              CLAPBEVFlip3D(1.0, 1.0)):
        results = t(results)
    check_consistent(before, results)
    meta_keys = ('cam2img', 'lidar2cam', 'lidar2img', 'img_aug_matrix', 'lidar_aug_matrix',
                 'img_shape', 'box_type_3d')
    results['box_type_3d'] = LiDARInstance3DBoxes
    packed = Pack3DDetInputs(keys=['points', 'img', 'gt_bboxes_3d', 'gt_labels_3d'],
                             meta_keys=meta_keys)(results)
    meta = packed['data_samples'].metainfo
    for k in meta_keys:
        assert k in meta, k
    assert np.allclose(meta['lidar_aug_matrix'], results['lidar_aug_matrix'])
    assert tuple(meta['img_shape']) == (256, 704)
    assert packed['inputs']['img'].shape == (1, 3, 256, 704)
    assert packed['inputs']['points'].shape == (500, 5)


def test_rotation_without_boxes_and_bad_args():
    np.random.seed(0)
    before = make_results()
    results = clone(before)
    del results['gt_bboxes_3d']
    after = CLAPGlobalRotScaleTrans(rot_range=0.5, scale_ratio_range=[1.0, 1.0])(results)
    a = after['lidar_aug_matrix']
    assert np.allclose(after['points'].tensor[:, :3].numpy(),
                       apply(a, before['points'].tensor[:, :3].numpy()), atol=1e-4)
    with pytest.raises(ValueError, match='scale_ratio_range'):
        CLAPGlobalRotScaleTrans(scale_ratio_range=[1.1, 0.9])
    with pytest.raises(ValueError, match='flip_ratio_bev_vertical'):
        CLAPBEVFlip3D(0.5, 1.5)

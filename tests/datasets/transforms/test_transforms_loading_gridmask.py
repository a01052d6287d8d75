"""Multi-view loading (RGB, 4x4 calibration) and GridMask (masked fraction, same mask for all views)."""
import cv2
import numpy as np
import pytest
from mmdet3d.registry import TRANSFORMS

import clap_plugin  # noqa: F401  (registers the transforms)
from clap_plugin.datasets.transforms import CLAPGridMask, CLAPLoadMultiViewImageFromFiles, grid_mask

CAMS = ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT',
        'CAM_BACK_RIGHT']


def test_load_multi_view_images(tmp_path):
    images = {}
    for i, cam in enumerate(CAMS):
        rgb = np.zeros((90, 160, 3), np.uint8)
        rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10 * i, 100, 200  # R encodes the camera
        path = str(tmp_path / f'{cam}.png')
        cv2.imwrite(path, rgb[..., ::-1])  # cv2 writes BGR
        yaw = i * np.pi / 3
        l2c = np.eye(4)
        l2c[:3, :3] = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]]) @ np.array(
            [[np.cos(yaw), np.sin(yaw), 0], [-np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
        l2c[:3, 3] = [0.1 * i, -0.3, -0.8]
        k = [[120.0 + i, 0, 80], [0, 120.0, 45], [0, 0, 1]]
        images[cam] = dict(img_path=path, cam2img=k, lidar2cam=l2c.tolist())
    t = TRANSFORMS.build(dict(type='CLAPLoadMultiViewImageFromFiles', to_float32=True))
    assert isinstance(t, CLAPLoadMultiViewImageFromFiles)
    out = t(dict(images=images))
    assert len(out['img']) == 6 and out['img'][0].dtype == np.float32
    for i in range(6):
        assert np.allclose(out['img'][i][5, 5], [10 * i, 100, 200])
    for key in ('cam2img', 'lidar2cam', 'cam2lidar', 'lidar2img', 'ori_cam2img', 'ori_lidar2img'):
        assert out[key].shape == (6, 4, 4), key
    for i, cam in enumerate(CAMS):
        k4 = np.eye(4)
        k4[:3, :3] = images[cam]['cam2img']
        assert np.allclose(out['cam2img'][i], k4)
        assert np.allclose(out['lidar2img'][i], k4 @ np.asarray(images[cam]['lidar2cam']))
        assert np.allclose(out['cam2lidar'][i] @ out['lidar2cam'][i], np.eye(4), atol=1e-9)
    assert out['img_shape'] == (90, 160) and out['num_views'] == 6
    assert out['img_path'] == [images[c]['img_path'] for c in CAMS]

    ordered = CLAPLoadMultiViewImageFromFiles(num_views=2, camera_names=['CAM_BACK', 'CAM_FRONT'])
    out = ordered(dict(images=images))
    assert np.allclose(out['img'][0][0, 0], [30, 100, 200])
    with pytest.raises(KeyError, match='CAM_SIDE'):
        CLAPLoadMultiViewImageFromFiles(num_views=1, camera_names=['CAM_SIDE'])(
            dict(images=images))


def test_grid_mask_known_fraction():
    rows = grid_mask(64, 64, period=16, length=8, start_h=0, start_w=0, use_h=True, use_w=False)
    assert rows.shape == (64, 64)
    assert rows.mean() == 0.5
    assert (rows == rows[:, :1]).all()  # whole rows
    both = grid_mask(64, 64, period=16, length=4, start_h=3, start_w=5, use_h=True, use_w=True)
    assert abs(both.mean() - (1 - 4 / 16) ** 2) < 1e-9


def test_grid_mask_transform_fraction_and_shared_mask():
    t = CLAPGridMask(use_h=True, use_w=False, max_epoch=1, rotate=1, ratio=0.5, mode=0, prob=1.0)
    np.random.seed(0)
    fractions = []
    for _ in range(100):
        imgs = [np.full((48, 96, 3), 7.0, np.float32), np.full((48, 96, 3), 3.0, np.float32)]
        out = t(dict(img=imgs))['img']
        masked0, masked1 = out[0] == 0, out[1] == 0
        assert np.array_equal(masked0, masked1)  # one mask for all views
        assert set(np.unique(out[0])) <= {0.0, 7.0}
        assert (masked0 == masked0[:, :1, :1]).all()  # whole rows
        fractions.append(masked0.mean())
    assert abs(np.mean(fractions) - 0.5) < 0.08
    inverted = CLAPGridMask(use_h=True, use_w=True, max_epoch=1, ratio=0.25, mode=1, prob=1.0)
    np.random.seed(1)
    kept = np.mean([(inverted(dict(img=[np.ones((64, 64, 1), np.float32)]))['img'][0] > 0).mean()
                    for _ in range(100)])
    assert abs(kept - (1 - 0.75 ** 2)) < 0.1


def test_grid_mask_probability_and_epoch_ramp():
    never = CLAPGridMask(prob=0.0, fixed_prob=True)
    img = np.ones((32, 32, 3), np.float32)
    assert (never(dict(img=[img]))['img'][0] == 1).all()
    ramp = CLAPGridMask(prob=0.6, max_epoch=6, fixed_prob=False)
    ramp.set_epoch(3)
    assert abs(ramp.prob - 0.3) < 1e-9
    ramp.set_epoch(12)
    assert abs(ramp.prob - 0.6) < 1e-9
    with pytest.raises(ValueError, match='mode'):
        CLAPGridMask(mode=2)

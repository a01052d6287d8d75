"""Ray targets agree with the data, in the augmented frames."""

import cv2
import numpy as np
import pytest
import torch
from mmdet3d.registry import MODELS
from mmengine.dataset import pseudo_collate

from tests.helpers.paths import REPO
from tests.helpers.pretrain import TINY_PRETRAIN, tiny_pretrain_setup

ROOT = REPO
TINY = TINY_PRETRAIN


@pytest.fixture(scope='module')
def batch_and_model(synthetic_nus):
    cfg, dataset = tiny_pretrain_setup(synthetic_nus)
    item = dataset[0]
    model = MODELS.build(cfg.model)
    model.ray_selector.num_pixels_per_camera = 400  # enough pixels with a LiDAR point under them
    model.train()
    data = model.data_preprocessor(pseudo_collate([item]), training=True)
    return dataset, item, model, data


def _rays(model, data):
    inputs, samples = data['inputs'], data['data_samples']
    metas = [s.metainfo for s in samples]
    imgs = inputs['imgs']
    cams = model.camera_matrices(metas, imgs.shape[1], imgs)
    raw = inputs['raw_imgs']
    bev_shape = (1, model.volume_lifter.volume_channels, model.volume_lifter.num_z, 8, 8)
    volume = torch.zeros(bev_shape)
    rays, info = model.build_rays(inputs['points'][0], raw, cams, 0, volume)
    return rays, info, cams, raw, metas


def test_lidar_ray_range_is_the_point_distance(batch_and_model):
    _, _, model, data = batch_and_model
    rays, info, cams, _, _ = _rays(model, data)
    n_l = model.ray_selector.num_lidar_rays
    origin = cams['lidar_aug_matrix'][0][:3, 3]
    pts = info.points[info.selection.point_inds]
    assert torch.allclose(rays.origins[:n_l], origin.expand(n_l, 3))
    assert torch.allclose(rays.range[:n_l], (pts - origin).norm(dim=1), atol=1e-5)
    end = rays.origins[:n_l] + rays.range[:n_l, None] * rays.directions[:n_l]
    assert torch.allclose(end, pts, atol=1e-4)
    assert not rays.rgb_mask[:n_l].any() and rays.range_mask[:n_l].all()
    # the origin is the LiDAR sensor moved by the global augmentation
    aug = np.asarray(data['data_samples'][0].metainfo['lidar_aug_matrix'])
    assert np.allclose(origin.numpy(), aug[:3, 3], atol=1e-5)


def test_camera_ray_rgb_is_the_augmented_image_pixel(batch_and_model):
    dataset, item, model, data = batch_and_model
    rays, info, cams, raw, metas = _rays(model, data)
    n_l = model.ray_selector.num_lidar_rays
    pixels = info.selection.pixels  # (N_cam, R, 2)
    n_cam, r, _ = pixels.shape
    rgb = rays.rgb[n_l:].reshape(n_cam, r, 3)
    # without ori_hw every pixel counts as real; only sky rays (no LiDAR return, going up) lose their target
    dropped = ~rays.rgb_mask[n_l:]
    assert not rays.range_mask[n_l:][dropped].any() and (rays.directions[n_l:][dropped, 2] > 0).all()
    assert dropped.float().mean() < 0.5
    info_raw = dataset.get_data_info(0)
    img_aug = np.asarray(metas[0]['img_aug_matrix'])
    errors = []
    for c, (cam_name, cam) in enumerate(info_raw['images'].items()):
        original = cv2.cvtColor(cv2.imread(cam['img_path']), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
        m = np.eye(3)
        m[:2, :2] = img_aug[c][:2, :2]
        m[:2, 2] = img_aug[c][:2, 3]
        uv1 = np.concatenate([pixels[c].numpy(), np.ones((r, 1))], 1) @ np.linalg.inv(m).T
        col = np.clip(np.floor(uv1[:, 0]).astype(int), 0, original.shape[1] - 1)
        row = np.clip(np.floor(uv1[:, 1]).astype(int), 0, original.shape[0] - 1)
        inside = (uv1[:, 0] >= 0) & (uv1[:, 0] < original.shape[1]) & (uv1[:, 1] >= 0) & \
            (uv1[:, 1] < original.shape[0])
        # the augmented image is a downscaled warp: compare with the mean of the source footprint
        blurred = cv2.blur(original, (9, 9))
        errors.append(np.abs(blurred[row[inside], col[inside]] - rgb[c][inside].numpy()).mean())
    assert np.mean(errors) < 0.06, errors


def test_camera_ray_range_hits_the_lidar_point_seen_in_that_pixel(batch_and_model):
    _, _, model, data = batch_and_model
    rays, info, cams, _, _ = _rays(model, data)
    n_l = model.ray_selector.num_lidar_rays
    cam = rays[n_l:]
    sel = cam.range_mask
    assert int(sel.sum()) > 50
    ends = cam.origins[sel] + cam.range[sel, None] * cam.directions[sel]
    d = torch.cdist(ends, info.points).min(dim=1).values
    # a pixel spans a few centimetres at these ranges: the ray end lies next to the point seen there
    assert float((d < 0.05 * cam.range[sel] + 0.1).float().mean()) > 0.95
    # and it projects back onto the pixel the ray was cast through
    proj = info.proj
    n_cam, r, _ = info.selection.pixels.shape
    cam_idx = torch.arange(n_cam).repeat_interleave(r)[sel]
    hom = torch.cat([ends, torch.ones_like(ends[:, :1])], 1)
    p = torch.einsum('nij,nj->ni', proj[cam_idx], hom)
    uv = p[:, :2] / p[:, 2:3]
    assert torch.allclose(uv, info.selection.pixels.reshape(-1, 2)[sel], atol=1e-2)

"""The view transform's LiDAR depth input lands on the same image content after BEVFusion's augmentations.

Coloured squares are drawn in the original 1600x900 images around the projections of a few LiDAR points.
After the image augmentation (resize, crop, flip, rotate), the global rotation/scale/translation and the
BEV flips, the depth image that ``CLAPDepthLSSTransform`` builds from the augmented points and the metas
(``lidar2img``, ``img_aug_matrix``, ``lidar_aug_matrix``) must put each point's depth on a pixel of its
square in the augmented image.
"""
import numpy as np
import torch
from mmdet3d.structures.points import LiDARPoints

from clap_plugin.datasets.transforms.bev_flip import CLAPBEVFlip3D
from clap_plugin.datasets.transforms.global_aug import CLAPGlobalRotScaleTrans
from clap_plugin.datasets.transforms.image_aug import CLAPImageAug3D
from clap_plugin.models.bevfusion import CLAPDepthLSSTransform
from tests.helpers.bevfusion_inputs import camera_metas

FINAL = (128, 352)
# (camera, u, v, depth, colour channel): continuous pixel coordinates in the original image
MARKERS = [(0, 700.0, 520.0, 12.0, 0), (0, 950.0, 560.0, 20.0, 1), (3, 800.0, 500.0, 15.0, 2),
           (1, 300.0, 600.0, 9.0, 0)]


def _scene():
    metas = camera_metas((900, 1600))  # identity img_aug_matrix at the original size
    imgs = [np.zeros((900, 1600, 3), dtype=np.uint8) for _ in range(6)]
    pts = []
    for cam, u, v, d, ch in MARKERS:
        iu, iv = int(u), int(v)
        imgs[cam][iv - 40:iv + 40, iu - 40:iu + 40, ch] = 255
        p_cam = d * np.linalg.inv(metas['cam2img'][cam][:3, :3]) @ np.array([u, v, 1.0])
        p = metas['cam2lidar'][cam] @ np.append(p_cam, 1.0)
        pts.append([*p[:3], 0.5, 0.0])
    results = dict(img=imgs, points=LiDARPoints(torch.tensor(pts, dtype=torch.float32), points_dim=5))
    for key in ('cam2img', 'lidar2cam', 'lidar2img', 'cam2lidar'):
        results[key] = metas[key]
    return results


def test_depth_input_follows_augmented_images_and_points():
    vt = CLAPDepthLSSTransform(in_channels=8, out_channels=4, image_size=FINAL, feature_size=(16, 44),
                               xbound=[-54.0, 54.0, 0.6], ybound=[-54.0, 54.0, 0.6], zbound=[-10.0, 10.0, 20.0],
                               dbound=[1.0, 60.0, 1.0])
    pipeline = [
        CLAPImageAug3D(final_dim=FINAL, resize_lim=(0.2, 0.26), rot_lim=(-5.4, 5.4), rand_flip=True,
                       is_train=True),
        CLAPGlobalRotScaleTrans(rot_range=(-0.78539816, 0.78539816), scale_ratio_range=(0.9, 1.1),
                                translation_std=0.5),
        CLAPBEVFlip3D(flip_ratio_bev_horizontal=0.5, flip_ratio_bev_vertical=0.5),
    ]
    visible = 0
    flips = set()
    for seed in range(6):
        np.random.seed(seed)
        results = _scene()
        for t in pipeline:
            results = t(results)
        flips.add((results['pcd_horizontal_flip'], results['pcd_vertical_flip']))
        f = lambda k: torch.as_tensor(np.asarray(results[k]), dtype=torch.float32)[None]  # noqa: E731
        depth = vt.depth_image([results['points'].tensor], f('lidar2img'), f('img_aug_matrix'),
                               f('lidar_aug_matrix')[0][None], 6)[0, :, 0]
        for cam, _, _, d, ch in MARKERS:
            hit = torch.nonzero((depth[cam] - d).abs() < 1e-2)
            if hit.shape[0] == 0:  # cropped away by this augmentation
                continue
            assert hit.shape[0] == 1
            r, c = hit[0].tolist()
            pixel = results['img'][cam][r, c]
            assert pixel[ch] > 200 and pixel.sum() - pixel[ch] < 60, (seed, cam, r, c, pixel)
            visible += 1
            # the point appears in no other camera
            assert int(((depth - d).abs() < 1e-2).sum()) == 1
    assert visible >= 12, visible  # most markers stay in view
    assert len(flips) > 1  # the flips were exercised

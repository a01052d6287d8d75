"""BEVFusion's train pipeline on the synthetic nuScenes set: after image and LiDAR augmentation, every
LiDAR point projects (through lidar2img, lidar_aug_matrix, img_aug_matrix) onto the augmented pixel that
shows what its original pixel showed."""
import numpy as np

import clap_plugin  # noqa: F401  (registers the transforms)

CLASSES = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle', 'bicycle', 'motorcycle', 'pedestrian',
           'traffic_cone', 'barrier')
META_KEYS = ('cam2img', 'lidar2cam', 'lidar2img', 'cam2lidar', 'img_aug_matrix', 'lidar_aug_matrix',
             'img_shape', 'ori_shape', 'box_type_3d', 'sample_idx')


def _dataset(root, prefix, pipeline):
    from mmdet3d.datasets import NuScenesDataset
    return NuScenesDataset(data_root=root, ann_file='nuscenes_infos_train.pkl', data_prefix=prefix,
                           pipeline=pipeline, metainfo=dict(classes=CLASSES),
                           modality=dict(use_lidar=True, use_camera=True), box_type_3d='LiDAR')


def _pipeline(augment):
    steps = [
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
        dict(type='CLAPLoadMultiViewImageFromFiles', to_float32=True),
        dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    ]
    if augment:
        steps += [
            dict(type='CLAPImageAug3D', final_dim=[256, 704], resize_lim=[0.38, 0.55],
                 bot_pct_lim=[0.0, 0.0], rot_lim=[-5.4, 5.4], rand_flip=True, is_train=True),
            dict(type='CLAPGlobalRotScaleTrans', scale_ratio_range=[0.9, 1.1],
                 rot_range=[-0.78539816, 0.78539816], translation_std=0.5),
            dict(type='CLAPBEVFlip3D'),
            dict(type='CLAPGridMask', use_h=True, use_w=True, max_epoch=6, rotate=1, offset=False,
                 ratio=0.5, mode=1, prob=0.0, fixed_prob=True),
        ]
    steps.append(dict(type='Pack3DDetInputs', keys=['points', 'img', 'gt_bboxes_3d', 'gt_labels_3d'],
                      meta_keys=META_KEYS))
    return steps


def _project(mat, xyz):
    h = np.concatenate([xyz, np.ones((len(xyz), 1))], axis=1) @ mat.T
    return h[:, :2] / np.maximum(h[:, 2:3], 1e-6), h[:, 2]


def test_augmented_points_land_on_matching_pixels(synthetic_nus, nus_prefix):
    np.random.seed(11)
    plain = _dataset(synthetic_nus, nus_prefix, _pipeline(False))[0]
    aug = _dataset(synthetic_nus, nus_prefix, _pipeline(True))[0]
    meta = aug['data_samples'].metainfo
    assert aug['inputs']['img'].shape == (6, 3, 256, 704)
    assert tuple(meta['ori_shape']) == (900, 1600) and tuple(meta['img_shape']) == (256, 704)
    lidar_aug = np.asarray(meta['lidar_aug_matrix'], dtype=np.float64)
    assert not np.allclose(lidar_aug, np.eye(4))

    old_xyz = plain['inputs']['points'][:, :3].numpy().astype(np.float64)
    new_xyz = aug['inputs']['points'][:, :3].numpy().astype(np.float64)
    assert np.allclose(new_xyz, old_xyz @ lidar_aug[:3, :3].T + lidar_aug[:3, 3], atol=1e-3)
    back = (new_xyz - lidar_aug[:3, 3]) @ np.linalg.inv(lidar_aug[:3, :3]).T

    orig_imgs = plain['inputs']['img'].permute(0, 2, 3, 1).numpy()
    aug_imgs = aug['inputs']['img'].permute(0, 2, 3, 1).numpy()
    checked, flipped = 0, 0
    errors = dict(exact=[], shifted=[], mirrored=[])
    for cam in range(6):
        lidar2img = np.asarray(meta['lidar2img'][cam], dtype=np.float64)
        img_aug = np.asarray(meta['img_aug_matrix'][cam], dtype=np.float64)
        uv, depth = _project(lidar2img, old_xyz)
        uv_aug, depth_aug = _project(lidar2img, back)
        uv_aug = uv_aug @ img_aug[:2, :2].T + img_aug[:2, 3]
        ok = ((depth > 1) & (uv[:, 0] >= 3) & (uv[:, 0] < 1597) & (uv[:, 1] >= 3) & (uv[:, 1] < 897) &
              (uv_aug[:, 0] >= 3) & (uv_aug[:, 0] < 701) & (uv_aug[:, 1] >= 3) & (uv_aug[:, 1] < 253))
        if ok.sum() < 50:
            continue
        assert np.allclose(depth_aug[ok], depth[ok], rtol=1e-4)
        a = np.floor(uv[ok]).astype(int)
        b = np.floor(uv_aug[ok]).astype(int)
        before = orig_imgs[cam][a[:, 1], a[:, 0]]
        # controls: the augmented image read 6 pixels to the right, or at the mirrored column
        for name, cols in (('exact', b[:, 0]), ('shifted', np.clip(b[:, 0] + 6, 0, 703)),
                           ('mirrored', 703 - b[:, 0])):
            errors[name].append(np.abs(before - aug_imgs[cam][b[:, 1], cols]).mean(1))
        checked += 1
        flipped += int(np.linalg.det(img_aug[:2, :2]) < 0)
    assert checked >= 3 and 0 < flipped < checked
    mean = {k: np.concatenate(v).mean() for k, v in errors.items()}
    # colours are 0..255; resampling blurs edges a little, a misregistration by 6 px much more
    assert mean['exact'] < 3.0, mean
    assert mean['exact'] < 0.5 * mean['shifted'] and mean['exact'] < 0.2 * mean['mirrored'], mean

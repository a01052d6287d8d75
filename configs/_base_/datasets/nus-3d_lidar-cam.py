# nuScenes 3D detection with LiDAR + six cameras, BEVFusion's lidar-cam train / test pipelines built from
# clap_plugin's transforms (256x704 images), on the sensor data of nus-3d_sensors.py. Info files:
# tools/create_data.py (mmdet3d v2 format). The loaders name a sensor file they cannot read or decode (file,
# sample token, sensor) and stop the run; `--cfg-options on_bad_sample=skip` skips such samples in training
# instead, and counts them.
_base_ = ['./nus-3d_sensors.py']
# named apart from the model configs' class_names (mmengine refuses duplicate base keys)
dataset_classes = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle', 'bicycle',
    'pedestrian', 'traffic_cone'
]
# NuScenesMetric evaluates on the split of this version (v1.0-mini: mini_val); set it to the version of the
# info files (`--cfg-options nus_version=v1.0-mini` updates every dataset's metainfo)
nus_version = 'v1.0-trainval'
metainfo = dict(classes=dataset_classes, version=nus_version)

# what CLAPBEVFusion (camera matrices, augmentation matrices) and the head / metric read
train_meta_keys = [
    'cam2img', 'ori_cam2img', 'lidar2cam', 'lidar2img', 'cam2lidar', 'ori_lidar2img', 'img_aug_matrix',
    'lidar_aug_matrix', 'box_type_3d', 'sample_idx', 'lidar_path', 'img_path', 'transformation_3d_flow',
    'pcd_rotation', 'pcd_scale_factor', 'pcd_trans', 'num_pts_feats', 'num_views'
]
test_meta_keys = [
    'cam2img', 'ori_cam2img', 'lidar2cam', 'lidar2img', 'cam2lidar', 'ori_lidar2img', 'img_aug_matrix',
    'lidar_aug_matrix', 'box_type_3d', 'sample_idx', 'lidar_path', 'img_path', 'num_pts_feats', 'num_views'
]

train_pipeline = [
    dict(type='CLAPLoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         backend_args=_base_.backend_args),
    dict(type='CLAPLoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5,
         backend_args=_base_.backend_args),
    dict(type='CLAPLoadPointsFromMultiSweeps', sweeps_num=9, load_dim=5, use_dim=5, pad_empty_sweeps=True,
         remove_close=True, backend_args=_base_.backend_args),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
    dict(type='CLAPImageAug3D', final_dim=[256, 704], resize_lim=[0.38, 0.55], bot_pct_lim=[0.0, 0.0],
         rot_lim=[-5.4, 5.4], rand_flip=True, is_train=True),
    dict(type='CLAPGlobalRotScaleTrans', scale_ratio_range=[0.9, 1.1], rot_range=[-0.78539816, 0.78539816],
         translation_std=0.5),
    dict(type='CLAPBEVFlip3D'),
    dict(type='PointsRangeFilter', point_cloud_range=_base_.data_point_cloud_range),
    dict(type='ObjectRangeFilter', point_cloud_range=_base_.data_point_cloud_range),
    dict(type='ObjectNameFilter', classes=dataset_classes),
    # as in BEVFusion's lidar-cam config the grid mask is present with prob 0 (off)
    dict(type='CLAPGridMask', use_h=True, use_w=True, max_epoch=6, rotate=1, offset=False, ratio=0.5,
         mode=1, prob=0.0, fixed_prob=True),
    dict(type='PointShuffle'),
    dict(type='Pack3DDetInputs', keys=['points', 'img', 'gt_bboxes_3d', 'gt_labels_3d'],
         meta_keys=train_meta_keys)
]
test_pipeline = [
    dict(type='CLAPLoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         backend_args=_base_.backend_args),
    dict(type='CLAPLoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5,
         backend_args=_base_.backend_args),
    dict(type='CLAPLoadPointsFromMultiSweeps', sweeps_num=9, load_dim=5, use_dim=5, pad_empty_sweeps=True,
         remove_close=True, test_mode=True, backend_args=_base_.backend_args),
    dict(type='CLAPImageAug3D', final_dim=[256, 704], resize_lim=[0.48, 0.48], bot_pct_lim=[0.0, 0.0],
         rot_lim=[0.0, 0.0], rand_flip=False, is_train=False),
    dict(type='PointsRangeFilter', point_cloud_range=_base_.data_point_cloud_range),
    dict(type='Pack3DDetInputs', keys=['img', 'points', 'gt_bboxes_3d', 'gt_labels_3d'],
         meta_keys=test_meta_keys)
]

train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CBGSDataset',
        dataset=dict(
            type=_base_.dataset_type,
            data_root=_base_.data_root,
            ann_file='nuscenes_infos_train.pkl',
            pipeline=train_pipeline,
            metainfo=metainfo,
            modality=_base_.input_modality,
            test_mode=False,
            data_prefix=_base_.data_prefix,
            use_valid_flag=True,
            box_type_3d='LiDAR',
            backend_args=_base_.backend_args)))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=_base_.dataset_type,
        data_root=_base_.data_root,
        ann_file='nuscenes_infos_val.pkl',
        pipeline=test_pipeline,
        metainfo=metainfo,
        modality=_base_.input_modality,
        data_prefix=_base_.data_prefix,
        test_mode=True,
        box_type_3d='LiDAR',
        backend_args=_base_.backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CLAPNuScenesMetric',  # NuScenesMetric that scores 'no box in range' as 0 instead of failing
    data_root=_base_.data_root,
    ann_file=_base_.data_root + 'nuscenes_infos_val.pkl',
    metric='bbox',
    backend_args=_base_.backend_args)
test_evaluator = val_evaluator

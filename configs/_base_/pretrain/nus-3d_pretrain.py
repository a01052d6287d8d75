# Label-free nuScenes data for CLAP pre-training: LiDAR (keyframe + sweeps) and six cameras, BEVFusion's
# augmentations, no annotation is loaded (test_mode=True and load_eval_anns=False: the dataset never parses
# instances). The whole train split, as in the paper. A sensor file the loaders cannot read or decode stops the
# run with a line naming it (file, sample token, sensor); skipping it is not possible here (mmengine refetches
# another sample only in training mode, and this dataset is test_mode=True), so on_bad_sample=skip is refused.
_base_ = ['../datasets/nus-3d_sensors.py']
pretrain_image_size = [256, 704]
pretrain_sweeps_num = 9
pretrain_meta_keys = [
    'cam2img', 'lidar2cam', 'lidar2img', 'cam2lidar', 'img_aug_matrix', 'lidar_aug_matrix', 'sample_idx',
    'lidar_path', 'img_path', 'num_pts_feats', 'num_views', 'box_type_3d', 'ori_shape'
]
train_pipeline = [
    dict(type='CLAPLoadMultiViewImageFromFiles', to_float32=True, color_type='color',
         backend_args=_base_.backend_args),
    dict(type='CLAPLoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5,
         backend_args=_base_.backend_args),
    dict(type='CLAPLoadPointsFromMultiSweeps', sweeps_num=pretrain_sweeps_num, load_dim=5, use_dim=5,
         pad_empty_sweeps=True, remove_close=True, backend_args=_base_.backend_args),
    dict(type='CLAPImageAug3D', final_dim=pretrain_image_size, resize_lim=[0.38, 0.55], bot_pct_lim=[0.0, 0.0],
         rot_lim=[-5.4, 5.4], rand_flip=True, is_train=True),
    dict(type='CLAPGlobalRotScaleTrans', scale_ratio_range=[0.9, 1.1], rot_range=[-0.78539816, 0.78539816],
         translation_std=0.5),
    dict(type='CLAPBEVFlip3D'),
    dict(type='PointsRangeFilter', point_cloud_range=_base_.data_point_cloud_range),
    dict(type='PointShuffle'),
    dict(type='Pack3DDetInputs', keys=['points', 'img'], meta_keys=pretrain_meta_keys)
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=_base_.dataset_type,
        data_root=_base_.data_root,
        ann_file='nuscenes_infos_train.pkl',
        pipeline=train_pipeline,
        modality=_base_.input_modality,
        data_prefix=_base_.data_prefix,
        test_mode=True,
        load_eval_anns=False,
        box_type_3d='LiDAR',
        backend_args=_base_.backend_args))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

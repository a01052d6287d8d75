# A small CPU variant of SimIPU pre-training for the demo, the tests and CI: the same model and losses as
# simipu_pretrain_nus.py on the narrow BEVFusion of configs/_base_/models/bevfusion_cpu-tiny.py (LiDAR BEV 128
# channels, image neck 64), 512 keypoints, 1024 point-pixel pairs, 4 epochs.
#   python tools/train.py projects/SimIPU/configs/simipu_pretrain_nus_cpu-tiny.py --cfg-options data_root=DIR/
_base_ = [
    '../../../configs/_base_/default_runtime.py', '../../../configs/_base_/models/bevfusion_cpu-tiny.py',
    '../../../configs/_base_/pretrain/nus-3d_pretrain.py'
]
custom_imports = dict(imports=['clap_plugin', 'projects.SimIPU.simipu'], allow_failed_imports=False)
point_cloud_range = {{_base_.point_cloud_range}}
image_size = {{_base_.image_size}}

model = dict(
    type='SimIPUPretrainer',
    bbox_head=None,
    lidar_channels=128,
    image_channels=64,
    embed_dim=128,
    hidden_channels=128,
    num_keypoints=512,
    num_pairs=1024,
    temperature=0.07,
    match_threshold=0.1,
    rot_range=[-0.78539816, 0.78539816],
    scale_range=[0.9, 1.1],
    translation_std=0.5,
    flip_prob=0.5,
    point_drop_ratio=0.1,
    jitter_std=0.01,
    keyframe_dim=4)

sweeps_num = 2
train_pipeline = [
    dict(type='CLAPLoadMultiViewImageFromFiles', to_float32=True, color_type='color'),
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='LoadPointsFromMultiSweeps', sweeps_num=sweeps_num, load_dim=5, use_dim=5, pad_empty_sweeps=True,
         remove_close=True),
    dict(type='CLAPImageAug3D', final_dim=image_size, resize_lim=[0.2, 0.24], bot_pct_lim=[0.0, 0.0],
         rot_lim=[-5.4, 5.4], rand_flip=True, is_train=True),
    dict(type='CLAPGlobalRotScaleTrans', scale_ratio_range=[0.95, 1.05], rot_range=[-0.3, 0.3],
         translation_std=0.2),
    dict(type='CLAPBEVFlip3D'),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PointShuffle'),
    dict(type='Pack3DDetInputs', keys=['points', 'img'], meta_keys={{_base_.pretrain_meta_keys}})
]
train_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))

max_epochs = 4
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=5e-6, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True)
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=2))
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

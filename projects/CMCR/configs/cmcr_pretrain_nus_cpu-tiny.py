# A small CPU variant of CMCR pre-training for the demo, the tests and CI: the same model and losses as
# cmcr_pretrain_nus.py on the narrow BEVFusion of configs/_base_/models/bevfusion_cpu-tiny.py (LiDAR BEV 128
# channels, image neck 64 at stride 8), 16 x 16 mask patches, 1024 pairs and 1024 occupancy queries, 4 epochs.
#   python tools/train.py projects/CMCR/configs/cmcr_pretrain_nus_cpu-tiny.py --cfg-options data_root=DIR/
_base_ = [
    '../../../configs/_base_/default_runtime.py', '../../../configs/_base_/models/bevfusion_cpu-tiny.py',
    '../../../configs/_base_/pretrain/nus-3d_pretrain.py'
]
custom_imports = dict(imports=['clap_plugin', 'projects.CMCR.cmcr'], allow_failed_imports=False)
point_cloud_range = {{_base_.point_cloud_range}}
image_size = {{_base_.image_size}}

model = dict(
    type='CMCRPretrainer',
    bbox_head=None,
    lidar_channels=128,
    image_channels=64,
    codebook=dict(type='UnifiedCodebook', num_codes=400, dim=64, decay=0.99, dead_threshold=0.03),
    num_pairs=1024,
    temperature=0.07,
    code_temperature=0.1,
    mim_mask_ratio=0.5,
    mim_patch_size=16,
    num_occ_queries=1024,
    occ_max_offset=0.5,
    occ_hidden=64,
    loss_contrast_weight=1.0,
    loss_mim_weight=1.0,
    loss_occ_weight=1.0,
    loss_code_weight=0.1,
    loss_commit_weight=0.25,
    loss_decorr_weight=0.1,
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

# A small CPU variant of CLAP pre-training for the demo, the tests and CI: the same model and losses as
# clap_pretrain_nus.py on the narrow BEVFusion (128x352 images, 0.15 m voxels, 90 x 90 BEV), with small ray
# budgets (512 LiDAR + 6 x 48 camera rays, 24 + 8 samples), 64 prototypes of 32 and a 1-epoch warm-up.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/bevfusion_cpu-tiny.py',
    './_base_/pretrain/nus-3d_pretrain.py'
]
point_cloud_range = {{_base_.point_cloud_range}}
image_size = {{_base_.image_size}}

model = dict(
    type='CLAPPretrainer',
    bbox_head=None,
    lidar_mask_ratio=0.9,
    camera_mask_ratio=0.9,
    mask_block_size=[1.2, 1.2],  # one BEV cell: 8 x 8 voxels of 0.15 m
    image_patch_size=16,
    proto_max_cells=256,
    keyframe_dim=4,
    volume_lifter=dict(type='CLAPBEVVolumeLifter', in_channels=256, volume_channels=16, num_z=5, num_conv3d=1),
    rendering_head=dict(
        type='CLAPRenderingHead',
        in_channels=16,
        point_cloud_range=point_cloud_range,
        num_stratified=24,
        num_importance=8,
        up_sample_steps=2,
        ray_chunk_size=1024),
    ray_sampler=dict(
        type='CurvatureSampler',
        num_lidar_rays=512,
        num_pixels_per_camera=48,
        warmup_epochs=1,
        estimator='finite_difference',
        num_candidates=1024,
        gaussian_kernel_size=5),
    prototype_loss=dict(
        type='SwappedPrototypeLoss',
        lidar_channels=128,
        camera_channels=32,
        embed_dim=32,
        hidden_channels=64,
        num_prototypes=64,
        temperature=1.0,
        sinkhorn_epsilon=0.05,
        sinkhorn_iterations=3),
    gram_regularizer=dict(type='GramRegularizer', loss_weight=0.1))

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
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=2e-6, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True)
]
custom_hooks = [
    dict(type='PrototypeEMHook', interval=5, freeze_iters=4, buffer_size=2048),
    dict(type='CLAPVisualizationHook', interval=10, camera=0, stride=4),
]
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=1, max_keep_ckpts=2))
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

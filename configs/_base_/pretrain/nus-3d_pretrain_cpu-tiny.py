# Shared by the CPU-tiny pre-training configs (CLAP and the baselines in projects/): the narrow BEVFusion of
# _base_/models/bevfusion_cpu-tiny.py, the label-free pipeline at 128x352 with 2 sweeps, batch 1, no workers,
# a 4-epoch AdamW + cosine schedule, and TensorBoard logging. A method config adds its `model` (and may
# change the lr).
_base_ = ['../default_runtime.py', '../models/bevfusion_cpu-tiny.py', './nus-3d_pretrain.py']
point_cloud_range = {{_base_.point_cloud_range}}
image_size = {{_base_.image_size}}

sweeps_num = 2
train_pipeline = [
    dict(type='CLAPLoadMultiViewImageFromFiles', to_float32=True, color_type='color'),
    dict(type='CLAPLoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
    dict(type='CLAPLoadPointsFromMultiSweeps', sweeps_num=sweeps_num, load_dim=5, use_dim=5, pad_empty_sweeps=True,
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

# scalars (losses, lr) also as TensorBoard event files under WORK_DIR/TIMESTAMP/vis_data (tensorboard --logdir)
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(vis_backends=vis_backends)

# A small CPU variant of bevfusion_lidar_finetune_nus.py (stage 1 of the two-stage recipe) for the tests and
# quick checks on a synthetic set: the narrow LiDAR branch of _base_/models/bevfusion_cpu-tiny.py, GT sampling
# from the database of tools/create_data.py, and a 2-epoch schedule whose last epoch runs without GT sampling.
#   python tools/create_data.py nuscenes --root-path /tmp/nus --out-dir /tmp/nus --version v1.0-mini
#   OMP_NUM_THREADS=1 python tools/train.py configs/bevfusion_lidar_finetune_nus_cpu-tiny.py \
#       --cfg-options data_root=/tmp/nus/ [load_from=stage1_init.pth]
_base_ = ['./bevfusion_lidar-cam_finetune_nus_cpu-tiny.py', './_base_/datasets/nus-3d_gt-sampling.py']
from clap_plugin.datasets.lidar_only import lidar_only_pipeline  # noqa: E402

input_modality = dict(use_lidar=True, use_camera=False)

model = dict(img_backbone=None, img_neck=None, view_transform=None, fusion_layer=None)

db_sampler = dict(
    _base_.db_sampler,
    data_root=_base_.data_root,
    info_path=_base_.data_root + 'nuscenes_dbinfos_train.pkl',
    classes=_base_.dataset_classes)
train_pipeline = lidar_only_pipeline(_base_.train_pipeline, db_sampler)
test_pipeline = lidar_only_pipeline(_base_.test_pipeline)

train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline, modality=input_modality)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, modality=input_modality))
test_dataloader = val_dataloader
val_evaluator = dict(modality=input_modality)
test_evaluator = val_evaluator

# epochs, so that the GT-sampling switch-off applies: 2 epochs, the second without ObjectSample
max_epochs = 2
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=2))
log_processor = dict(by_epoch=True, window_size=1)
custom_hooks = [dict(type='CLAPDisableObjectSampleHook', disable_after_epoch=max_epochs - 1)]

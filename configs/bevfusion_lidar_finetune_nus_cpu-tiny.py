# A small CPU variant of bevfusion_lidar_finetune_nus.py (stage 1 of the two-stage recipe) for the tests and
# quick checks on a synthetic set: the narrow LiDAR branch of _base_/models/bevfusion_cpu-tiny.py, GT sampling
# from the database of tools/create_data.py, and a 2-epoch schedule whose last epoch runs without GT sampling.
#   python tools/create_data.py nuscenes --root-path /tmp/nus --out-dir /tmp/nus --version v1.0-mini
#   OMP_NUM_THREADS=1 python tools/train.py configs/bevfusion_lidar_finetune_nus_cpu-tiny.py \
#       --cfg-options data_root=/tmp/nus/ [load_from=stage1_init.pth]
_base_ = ['./bevfusion_lidar-cam_finetune_nus_cpu-tiny.py', './_base_/datasets/nus-3d_gt-sampling.py']
from clap_plugin.datasets.lidar_only import lidar_only_settings  # noqa: E402

# the LiDAR-only keys of bevfusion_lidar_finetune_nus.py, on the CPU-tiny lidar-cam base
(input_modality, db_sampler, train_pipeline, test_pipeline, model, train_dataloader, val_dataloader, test_dataloader,
 val_evaluator, test_evaluator) = lidar_only_settings(
    _base_.train_pipeline, _base_.test_pipeline, _base_.db_sampler, _base_.data_root, _base_.dataset_classes,
    _base_.train_dataloader, _base_.val_dataloader)

# epochs, so that the GT-sampling switch-off applies: 2 epochs, the second without ObjectSample
max_epochs = 2
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=2))
log_processor = dict(by_epoch=True, window_size=1)
custom_hooks = [dict(type='CLAPDisableObjectSampleHook', disable_after_epoch=max_epochs - 1)]

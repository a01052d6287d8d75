# A small CPU variant of bevfusion_lidar-cam_finetune_nus.py for the demo and the tests: the same
# architecture narrowed (_base_/models/bevfusion_cpu-tiny.py: 128x352 images, 0.15 m voxels, 90x90 BEV), the
# same pipelines at 128x352, batch 2, a short iteration-based AdamW schedule. Typical use on a synthetic set:
#   OMP_NUM_THREADS=1 python tools/train.py configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py \
#       --cfg-options data_root=/tmp/nus/ [load_from=encoder.pth] [label_fraction=0.5]
#   OMP_NUM_THREADS=1 python tools/test.py configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py \
#       work_dirs/bevfusion_lidar-cam_finetune_nus_cpu-tiny/iter_400.pth --cfg-options data_root=/tmp/nus/
_base_ = [
    './_base_/models/bevfusion_cpu-tiny.py', './_base_/datasets/nus-3d_lidar-cam_tiny.py',
    './_base_/schedules/cpu-iter-short.py', './_base_/default_runtime.py'
]
custom_imports = dict(imports=['clap_plugin'], allow_failed_imports=False)

# dense heatmap prior p = 0.1 per cell, as the full-size fine-tune config (bevfusion_lidar-cam_finetune_nus.py)
model = dict(bbox_head=dict(heatmap_prior_prob=0.1))

load_from = None
label_fraction = 1.0  # a synthetic set is small: keep every training sample unless told otherwise
label_fraction_seed = 0

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LabelFractionDataset',
        fraction=label_fraction,
        seed=label_fraction_seed,
        dataset=_base_.train_dataloader.dataset))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2, save_last=True))
log_processor = dict(by_epoch=False, window_size=10)

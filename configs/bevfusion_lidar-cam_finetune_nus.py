# Fine-tune the BEVFusion lidar-cam detector (Swin-T + 0.075 m voxels, TransFusion head) on a fixed, seeded
# fraction of the nuScenes training labels (CLAP: 5%), starting from a CLAP checkpoint, and evaluate on val
# with NuScenesMetric (mAP / NDS).
#   python tools/train.py configs/bevfusion_lidar-cam_finetune_nus.py \
#       --cfg-options load_from=work_dirs/clap_pretrain_nus/encoder.pth label_fraction=0.05
# (an encoder-only checkpoint from tools/export_pretrained.py, or a full pre-training checkpoint: both load
# with strict=False; the head starts from its initialisation). load_from=None trains from scratch.
_base_ = [
    './_base_/models/bevfusion_lidar-cam.py', './_base_/datasets/nus-3d_lidar-cam.py',
    './_base_/schedules/cyclic-20e.py', './_base_/default_runtime.py'
]
custom_imports = dict(imports=['clap_plugin'], allow_failed_imports=False)

# the dense heatmap starts at p = 0.1 per cell (bias -2.197, the focal-loss prior of CenterNet / CenterPoint)
# instead of the conv's default p ~ 0.5; the state dict is unchanged, so checkpoints stay upstream-compatible
model = dict(bbox_head=dict(heatmap_prior_prob=0.1))

load_from = None  # set to a CLAP (or baseline) pre-training checkpoint
label_fraction = 0.05  # share of the training samples whose labels are used
label_fraction_seed = 0  # fixes the subset, independent of the training seed

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CBGSDataset',
        dataset=dict(
            type='LabelFractionDataset',
            fraction=label_fraction,
            seed=label_fraction_seed,
            dataset=_base_.train_dataloader.dataset.dataset)))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='AtomicCheckpointHook', interval=5, max_keep_ckpts=3, save_last=True))
log_processor = dict(window_size=50)

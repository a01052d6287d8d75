# CMCR pre-training on nuScenes (a baseline of CLAP, arXiv 2412.03059) with CLAP's encoders, data and schedule: BEVFusion lidar-cam (Swin-T,
# 0.075 m voxels). A frozen pre-trained 2D teacher (required: model.teacher_checkpoint, a local file); point-to-pixel
# InfoNCE (4096 pairs off the masked patches, tau 0.07) on modality-shared features, masked image modelling (half
# of the 32 x 32 patches) and occupancy estimation (4096 queries within 0.5 m of the surfaces) on modality-specific
# features plus the quantised shared codes, a unified codebook of 400 x 64 shared by both modalities (cross-modal
# EMA, decay 0.999, all-reduced), code matching, and a decorrelation of shared and specific features; 12 epochs,
# AdamW lr 5e-5 cosine.
#   python tools/train.py projects/CMCR/configs/cmcr_pretrain_nus.py --cfg-options model.teacher_checkpoint=PATH
#   bash tools/dist_train.sh projects/CMCR/configs/cmcr_pretrain_nus.py 8 --cfg-options model.teacher_checkpoint=PATH
_base_ = [
    '../../../configs/_base_/default_runtime.py', '../../../configs/_base_/models/bevfusion_lidar-cam.py',
    '../../../configs/_base_/pretrain/nus-3d_pretrain.py'
]
custom_imports = dict(imports=['clap_plugin', 'projects.CMCR.cmcr'], allow_failed_imports=False)

model = dict(
    type='CMCRPretrainer',
    bbox_head=None,
    lidar_channels=256,
    teacher=None,  # None: the architecture of img_backbone
    teacher_checkpoint=None,  # required: a local file (the model refuses to build without one)
    random_teacher_ablation=False,  # True: the named random-teacher ablation (logged), not CMCR
    teacher_level=0,  # stride 8
    teacher_channels=192,
    codebook=dict(type='UnifiedCodebook', num_codes=400, dim=64, decay=0.999, dead_threshold=0.03),
    num_pairs=4096,
    temperature=0.07,
    code_temperature=1.0,
    mim_mask_ratio=0.5,
    mim_patch_size=32,
    num_occ_queries=4096,
    occ_max_offset=0.5,
    occ_hidden=64,
    loss_contrast_weight=1.0,
    loss_mim_weight=1.0,
    loss_occ_weight=1.0,
    loss_code_weight=1.0,
    loss_commit_weight=0.25,
    loss_decorr_weight=0.1,
    keyframe_dim=4)

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-5, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=5e-7, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True)
]
# the camera branch (a frozen teacher stands in for it), view transform, fuser and BEV backbone get no gradient
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
auto_scale_lr = dict(enable=False, base_batch_size=32)

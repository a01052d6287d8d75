# PPKT pre-training on nuScenes (a baseline of CLAP, arXiv 2412.03059) with CLAP's encoders, data and schedule: BEVFusion lidar-cam (Swin-T,
# 0.075 m voxels), a frozen pre-trained 2D teacher of the image backbone's architecture (a required local
# checkpoint: model.teacher_checkpoint, e.g. ImageNet/nuImages Swin-T weights on disk or tools/train_2d_teacher.py
# output), upsampling projection of its stride-8 level (192 ch) to D = 64, point-to-pixel InfoNCE over 4096
# pairs, one pair per (BEV cell, camera), tau 0.07; 12 epochs, AdamW lr 5e-5 cosine, wd 0.01.
#   python tools/train.py projects/PPKT/configs/ppkt_pretrain_nus.py --cfg-options model.teacher_checkpoint=PATH
#   bash tools/dist_train.sh projects/PPKT/configs/ppkt_pretrain_nus.py 8 --cfg-options model.teacher_checkpoint=PATH
# model.random_teacher_ablation=True (instead of a checkpoint) is the named random-teacher ablation, not PPKT.
_base_ = [
    '../../../configs/_base_/default_runtime.py', '../../../configs/_base_/models/bevfusion_lidar-cam.py',
    '../../../configs/_base_/pretrain/nus-3d_pretrain.py'
]
custom_imports = dict(imports=['clap_plugin', 'projects.PPKT.ppkt'], allow_failed_imports=False)

model = dict(
    type='PPKTPretrainer',
    bbox_head=None,
    teacher=None,  # None: the architecture of img_backbone
    teacher_checkpoint=None,  # required: a local file (the model refuses to build without one)
    random_teacher_ablation=False,
    teacher_level=0,
    teacher_channels=192,
    lidar_channels=256,
    embed_dim=64,
    num_pairs=4096,
    temperature=0.07,
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
# the camera branch, fuser and BEV backbone get no gradient from PPKT (they are exported as initialised)
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
auto_scale_lr = dict(enable=False, base_batch_size=32)

# SimIPU pre-training on nuScenes (a baseline of CLAP, arXiv 2412.03059) with CLAP's encoders, data and schedule: BEVFusion lidar-cam (Swin-T,
# 0.075 m voxels). Intra-modal InfoNCE between two independent sets of 1024 farthest-point-sampled keypoints of
# two LiDAR views (the second made in the model by a random rotation +-90 deg / scale 0.75-1.25 / flip, 10 % point
# dropout and 1 cm jitter) matched by the Hungarian algorithm after undoing the transform, and inter-modal InfoNCE
# from image features (backbone + neck) at 4096 projected points to stop-gradient point features; 3-layer BN
# projection MLPs to 128, tau 0.07; 12 epochs, AdamW lr 5e-5 cosine.
#   python tools/train.py projects/SimIPU/configs/simipu_pretrain_nus.py
#   bash tools/dist_train.sh projects/SimIPU/configs/simipu_pretrain_nus.py 8
_base_ = [
    '../../../configs/_base_/default_runtime.py', '../../../configs/_base_/models/bevfusion_lidar-cam.py',
    '../../../configs/_base_/pretrain/nus-3d_pretrain.py'
]
custom_imports = dict(imports=['clap_plugin', 'projects.SimIPU.simipu'], allow_failed_imports=False)

model = dict(
    type='SimIPUPretrainer',
    bbox_head=None,
    lidar_channels=256,
    image_channels=256,  # GeneralizedLSSFPN output
    embed_dim=128,
    hidden_channels=256,
    num_keypoints=1024,
    num_pairs=4096,
    temperature=0.07,
    match_threshold=None,  # the original: every Hungarian match of the two FPS keypoint sets is used
    rot_range=[-1.5707963, 1.5707963],  # the original's +-90 deg, scale 0.75-1.25, flip; no translation
    scale_range=[0.75, 1.25],
    translation_std=0.0,
    flip_prob=0.5,
    point_stop_grad=True,  # the original: the inter-modal loss does not train the point side
    head_layers=3,  # the original's Linear-BN-ReLU x 2, Linear-BN heads
    point_drop_ratio=0.1,
    jitter_std=0.01,
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
# the view transform, fuser and BEV backbone get no gradient from SimIPU (exported as initialised)
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
auto_scale_lr = dict(enable=False, base_batch_size=32)

# CLAP pre-training on nuScenes (paper settings, arXiv 2412.03059): BEVFusion lidar-cam encoders (Swin-T,
# 0.075 m voxels) and the CLAP pre-trainer of _base_/pretrain/clap_model.py (mask rate 0.9, NeuS rendering of
# 8192 LiDAR + 6 x 1024 camera rays, curvature sampling after a 4-epoch warm-up, 512 prototypes with swapped
# assignment, EM hook and Gram regulariser); lr 5e-5 cosine, AdamW wd 0.01.
#   python tools/train.py configs/clap_pretrain_nus.py
#   bash tools/dist_train.sh configs/clap_pretrain_nus.py 8
_base_ = ['./_base_/pretrain/nus-3d_pretrain_full-size.py', './_base_/pretrain/clap_model.py']

model = _base_.clap_model

optim_wrapper = dict(paramwise_cfg=_base_.clap_paramwise_cfg)
custom_hooks = [
    # the prototypes learn from their gradients alone; the hook freezes, re-normalises and re-seeds them
    dict(type='PrototypeEMHook', interval=50, freeze_iters=100),
    dict(type='CLAPVisualizationHook', interval=500, camera=0, stride=8),
]

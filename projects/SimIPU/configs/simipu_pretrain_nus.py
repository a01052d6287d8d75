# SimIPU pre-training on nuScenes (a baseline of CLAP, arXiv 2412.03059) with CLAP's encoders, data and
# schedule: BEVFusion lidar-cam (Swin-T,
# 0.075 m voxels). Intra-modal InfoNCE between two independent sets of 1024 farthest-point-sampled keypoints of
# two LiDAR views (the second made in the model by a random rotation +-90 deg / scale 0.75-1.25 / flip, 10 % point
# dropout and 1 cm jitter) matched by the Hungarian algorithm after undoing the transform, and inter-modal InfoNCE
# from image features (backbone + neck) at 4096 projected points to stop-gradient point features; 3-layer BN
# projection MLPs to 128, tau 0.07; 12 epochs, AdamW lr 5e-5 cosine.
#   python tools/train.py projects/SimIPU/configs/simipu_pretrain_nus.py
#   bash tools/dist_train.sh projects/SimIPU/configs/simipu_pretrain_nus.py 8
_base_ = ['../../../configs/_base_/pretrain/nus-3d_pretrain_full-size.py', './_base_/simipu_model.py']
custom_imports = dict(imports=['clap_plugin', 'projects.SimIPU.simipu'], allow_failed_imports=False)

model = _base_.simipu_model

# the view transform, fuser and BEV backbone get no gradient from SimIPU (exported as initialised)

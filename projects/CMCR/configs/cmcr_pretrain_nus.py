# CMCR pre-training on nuScenes (a baseline of CLAP, arXiv 2412.03059) with CLAP's encoders, data and
# schedule: BEVFusion lidar-cam (Swin-T,
# 0.075 m voxels). A frozen pre-trained 2D teacher (required: model.teacher_checkpoint, a local file); point-to-pixel
# InfoNCE (4096 pairs off the masked patches, tau 0.07) on modality-shared features, masked image modelling (half
# of the 32 x 32 patches) and occupancy estimation (4096 queries within 0.5 m of the surfaces) on modality-specific
# features plus the quantised shared codes, a unified codebook of 400 x 64 shared by both modalities (cross-modal
# EMA, decay 0.999, all-reduced), code matching, and a decorrelation of shared and specific features; 12 epochs,
# AdamW lr 5e-5 cosine.
#   python tools/train.py projects/CMCR/configs/cmcr_pretrain_nus.py --cfg-options model.teacher_checkpoint=PATH
#   bash tools/dist_train.sh projects/CMCR/configs/cmcr_pretrain_nus.py 8 --cfg-options model.teacher_checkpoint=PATH
_base_ = ['../../../configs/_base_/pretrain/nus-3d_pretrain_full-size.py', './_base_/cmcr_model.py']
custom_imports = dict(imports=['clap_plugin', 'projects.CMCR.cmcr'], allow_failed_imports=False)

model = _base_.cmcr_model

# the camera branch (a frozen teacher stands in for it), view transform, fuser and BEV backbone get no gradient

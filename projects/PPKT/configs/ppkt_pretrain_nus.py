# PPKT pre-training on nuScenes (a baseline of CLAP, arXiv 2412.03059) with CLAP's encoders, data and
# schedule: BEVFusion lidar-cam (Swin-T,
# 0.075 m voxels), a frozen pre-trained 2D teacher of the image backbone's architecture (a required local
# checkpoint: model.teacher_checkpoint, e.g. ImageNet/nuImages Swin-T weights on disk or tools/train_2d_teacher.py
# output), upsampling projection of its stride-8 level (192 ch) to D = 64, point-to-pixel InfoNCE over 4096
# pairs, one pair per (BEV cell, camera), tau 0.07; 12 epochs, AdamW lr 5e-5 cosine, wd 0.01.
#   python tools/train.py projects/PPKT/configs/ppkt_pretrain_nus.py --cfg-options model.teacher_checkpoint=PATH
#   bash tools/dist_train.sh projects/PPKT/configs/ppkt_pretrain_nus.py 8 --cfg-options model.teacher_checkpoint=PATH
# model.random_teacher_ablation=True (instead of a checkpoint) is the named random-teacher ablation, not PPKT.
_base_ = ['../../../configs/_base_/pretrain/nus-3d_pretrain_full-size.py', './_base_/ppkt_model.py']
custom_imports = dict(imports=['clap_plugin', 'projects.PPKT.ppkt'], allow_failed_imports=False)

model = _base_.ppkt_model

# the camera branch, fuser and BEV backbone get no gradient from PPKT (they are exported as initialised)

# A small CPU variant of PPKT pre-training for the demo, the tests and CI: the same model and loss as
# ppkt_pretrain_nus.py on the narrow BEVFusion of configs/_base_/models/bevfusion_cpu-tiny.py (128x352 images,
# 0.15 m voxels, 90 x 90 BEV; teacher level 0 has 64 channels, LiDAR BEV 128), 1024 pairs, 4 epochs.
#   python tools/train_2d_teacher.py --data-root 2D_DATA/ --out work_dirs/teacher_2d.pth
#   python tools/train.py projects/PPKT/configs/ppkt_pretrain_nus_cpu-tiny.py --cfg-options data_root=DIR/ \
#       model.teacher_checkpoint=work_dirs/teacher_2d.pth
_base_ = ['../../../configs/_base_/pretrain/nus-3d_pretrain_cpu-tiny.py', './_base_/ppkt_model.py']
custom_imports = dict(imports=['clap_plugin', 'projects.PPKT.ppkt'], allow_failed_imports=False)

model = dict(
    _base_.ppkt_model,
    teacher_channels=64,  # teacher level 0 (stride 8) of the narrow Swin
    lidar_channels=128,
    embed_dim=32,
    num_pairs=1024)

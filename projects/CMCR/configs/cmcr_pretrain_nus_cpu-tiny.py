# A small CPU variant of CMCR pre-training for the demo, the tests and CI: the same model and losses as
# cmcr_pretrain_nus.py on the narrow BEVFusion of configs/_base_/models/bevfusion_cpu-tiny.py (LiDAR BEV 128
# channels, teacher level 0: 64 channels at stride 8), 16 x 16 mask patches, 1024 pairs and 1024 occupancy
# queries, 4 epochs.
#   python tools/train.py projects/CMCR/configs/cmcr_pretrain_nus_cpu-tiny.py --cfg-options data_root=DIR/ \
#       model.teacher_checkpoint=work_dirs/teacher_2d.pth  (tools/train_2d_teacher.py)
_base_ = ['../../../configs/_base_/pretrain/nus-3d_pretrain_cpu-tiny.py', './_base_/cmcr_model.py']
custom_imports = dict(imports=['clap_plugin', 'projects.CMCR.cmcr'], allow_failed_imports=False)

model = dict(
    _base_.cmcr_model,
    lidar_channels=128,
    teacher_channels=64,  # teacher level 0 (stride 8) of the narrow Swin
    num_pairs=1024,
    mim_patch_size=16,
    num_occ_queries=1024)

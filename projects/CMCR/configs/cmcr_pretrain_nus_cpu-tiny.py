# A small CPU variant of CMCR pre-training for the demo, the tests and CI: the same model and losses as
# cmcr_pretrain_nus.py on the narrow BEVFusion of configs/_base_/models/bevfusion_cpu-tiny.py (LiDAR BEV 128
# channels, teacher level 0: 64 channels at stride 8), 16 x 16 mask patches, 1024 pairs and 1024 occupancy queries, 4 epochs.
#   python tools/train.py projects/CMCR/configs/cmcr_pretrain_nus_cpu-tiny.py --cfg-options data_root=DIR/ \
#       model.teacher_checkpoint=work_dirs/teacher_2d.pth  (tools/train_2d_teacher.py)
_base_ = ['../../../configs/_base_/pretrain/nus-3d_pretrain_cpu-tiny.py']
custom_imports = dict(imports=['clap_plugin', 'projects.CMCR.cmcr'], allow_failed_imports=False)

model = dict(
    type='CMCRPretrainer',
    bbox_head=None,
    lidar_channels=128,
    teacher=None,  # None: the architecture of img_backbone
    teacher_checkpoint=None,  # required: a local file (the model refuses to build without one)
    random_teacher_ablation=False,  # True: the named random-teacher ablation (logged), not CMCR
    teacher_level=0,  # stride 8
    teacher_channels=64,
    codebook=dict(type='UnifiedCodebook', num_codes=400, dim=64, decay=0.999, dead_threshold=0.03),
    num_pairs=1024,
    temperature=0.07,
    code_temperature=1.0,
    mim_mask_ratio=0.5,
    mim_patch_size=16,
    num_occ_queries=1024,
    occ_max_offset=0.5,
    occ_hidden=64,
    loss_contrast_weight=1.0,
    loss_mim_weight=1.0,
    loss_occ_weight=1.0,
    loss_code_weight=1.0,
    loss_commit_weight=0.25,
    loss_decorr_weight=0.1,
    keyframe_dim=4)

# CMCR's pre-trainer settings at full size (the configs of this folder merge them into `model`; the CPU-tiny config
# overrides the sizes). A variable of its own, since mmengine refuses a key that two bases both set.
cmcr_model = dict(
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

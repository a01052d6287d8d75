# PPKT's pre-trainer settings at full size (the configs of this folder merge them into `model`; the CPU-tiny config
# overrides the sizes). A variable of its own, since mmengine refuses a key that two bases both set.
ppkt_model = dict(
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

# SimIPU's pre-trainer settings at full size (the configs of this folder merge them into `model`; the CPU-tiny config
# overrides the sizes). A variable of its own, since mmengine refuses a key that two bases both set.
simipu_model = dict(
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

# A small CPU variant of SimIPU pre-training for the demo, the tests and CI: the same model and losses as
# simipu_pretrain_nus.py on the narrow BEVFusion of configs/_base_/models/bevfusion_cpu-tiny.py (LiDAR BEV 128
# channels, image neck 64), 512 keypoints, 1024 point-pixel pairs, 4 epochs.
#   python tools/train.py projects/SimIPU/configs/simipu_pretrain_nus_cpu-tiny.py --cfg-options data_root=DIR/
_base_ = ['../../../configs/_base_/pretrain/nus-3d_pretrain_cpu-tiny.py']
custom_imports = dict(imports=['clap_plugin', 'projects.SimIPU.simipu'], allow_failed_imports=False)

model = dict(
    type='SimIPUPretrainer',
    bbox_head=None,
    lidar_channels=128,
    image_channels=64,
    embed_dim=128,
    hidden_channels=128,
    num_keypoints=512,
    num_pairs=1024,
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

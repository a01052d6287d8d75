# Table 3 row "separate pre-training" (UniPAD-style), camera half: the camera branch alone (LiDAR points only
# feed the depth input of the view transform and select the rays), 0.3 of the image patches masked, 512 rays
# per camera through pixels where LiDAR points project, depth L1 x 10 and RGB L1 x 10, no prototypes.
_base_ = ['../clap_pretrain_nus.py']
model = dict(
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    fusion_layer=None,
    pts_backbone=dict(in_channels=80),
    camera_mask_ratio=0.3,
    render_lidar=False,
    render_camera=True,
    pixels_through_points=True,
    prototype_loss=None,
    gram_regularizer=None,
    rendering_head=dict(loss_range_weight=10.0, loss_rgb_weight=10.0),
    ray_sampler=dict(num_pixels_per_camera=512, warmup_epochs=10**9))
custom_hooks = []

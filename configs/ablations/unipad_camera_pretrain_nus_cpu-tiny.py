# CPU-tiny variant of unipad_camera_pretrain_nus.py (UniPAD-style separate pre-training, camera half): the camera
# branch alone on the CPU-tiny model (32-channel camera BEV into the BEV backbone), 0.3 of the patches masked,
# rays through pixels where LiDAR points project (half of CLAP's per-camera budget, as in the full configs),
# depth L1 x 10 and RGB L1 x 10, no prototypes. Merge with the LiDAR half: tools/merge_pretrained.py.
_base_ = ['../clap_pretrain_nus_cpu-tiny.py']
model = dict(
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    fusion_layer=None,
    pts_backbone=dict(in_channels=32),
    camera_mask_ratio=0.3,
    render_lidar=False,
    render_camera=True,
    pixels_through_points=True,
    prototype_loss=None,
    gram_regularizer=None,
    rendering_head=dict(loss_range_weight=10.0, loss_rgb_weight=10.0),
    ray_sampler=dict(num_pixels_per_camera=24, warmup_epochs=10**9))
custom_hooks = []

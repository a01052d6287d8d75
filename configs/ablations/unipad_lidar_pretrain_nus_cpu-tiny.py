# CPU-tiny variant of unipad_lidar_pretrain_nus.py (UniPAD-style separate pre-training, LiDAR half): the LiDAR
# branch alone on the CPU-tiny model (128-channel LiDAR BEV into the BEV backbone), 0.8 of the BEV blocks
# masked, uniform depth rays only, depth L1 x 10, no prototypes.
_base_ = ['../clap_pretrain_nus_cpu-tiny.py']
model = dict(
    img_backbone=None,
    img_neck=None,
    view_transform=None,
    fusion_layer=None,
    pts_backbone=dict(in_channels=128),
    lidar_mask_ratio=0.8,
    render_lidar=True,
    render_camera=False,
    prototype_loss=None,
    gram_regularizer=None,
    rendering_head=dict(loss_range_weight=10.0),
    ray_sampler=dict(warmup_epochs=10**9))
custom_hooks = []

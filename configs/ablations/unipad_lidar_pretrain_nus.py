# Table 3 row "separate pre-training" (UniPAD-style), LiDAR half: the LiDAR branch alone (no camera encoder,
# no fuser), 0.8 of the BEV blocks masked, uniform depth rays only, depth L1 x 10, no prototypes.
# Merge with the camera half: python tools/merge_pretrained.py LIDAR.pth CAMERA.pth OUT.pth
_base_ = ['../clap_pretrain_nus.py']
model = dict(
    img_backbone=None,
    img_neck=None,
    view_transform=None,
    fusion_layer=None,
    lidar_mask_ratio=0.8,
    render_lidar=True,
    render_camera=False,
    prototype_loss=None,
    gram_regularizer=None,
    rendering_head=dict(loss_range_weight=10.0),
    ray_sampler=dict(warmup_epochs=10**9))
custom_hooks = []

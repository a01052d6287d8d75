# The model changes of the two halves of UniPAD-style separate pre-training (Table 3 row "separate
# pre-training"), shared by the full-size and the CPU-tiny ablation configs; each of those applies one of them
# to its CLAP config and adds its own BEV-backbone input width and ray budget.
# LiDAR half: the LiDAR branch alone (no camera encoder, no fuser), 0.8 of the BEV blocks masked, uniform depth
# rays only, depth L1 x 10, no prototypes.
unipad_lidar_half = dict(
    img_backbone=None,
    img_neck=None,
    view_transform=None,
    fusion_layer=None,
    lidar_mask_ratio=0.8,
    render_lidar=True,
    render_camera=False,
    prototype_loss=None,
    gram_regularizer=None,
    rendering_head=dict(loss_range_weight=10.0))
# camera half: the camera branch alone (LiDAR points only feed the depth input of the view transform and select
# the rays), 0.3 of the image patches masked, rays through pixels where LiDAR points project, depth L1 x 10 and
# RGB L1 x 10, no prototypes.
unipad_camera_half = dict(
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    fusion_layer=None,
    camera_mask_ratio=0.3,
    render_lidar=False,
    render_camera=True,
    prototype_loss=None,
    gram_regularizer=None,
    rendering_head=dict(loss_range_weight=10.0, loss_rgb_weight=10.0))
# uniform ray selection in every epoch (the camera half adds pixels through the projected LiDAR points)
unipad_uniform_rays = dict(weighting='uniform')

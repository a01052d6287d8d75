# CLAP's pre-trainer settings at full size (arXiv 2412.03059): mask rate 0.9 on both modalities, NeuS rendering of
# 8192 LiDAR + 6 x 1024 camera rays with 72 + 24 samples, curvature sampling after a 4-epoch uniform warm-up,
# 512 prototypes of 128 with swapped assignment (tau 1.0, 3 Sinkhorn iterations, eps 0.05) and the Gram
# regulariser. The CLAP configs merge it into `model` (the CPU-tiny one overrides the sizes); a variable of its
# own, since mmengine refuses a key that two bases both set. The rendering head takes the model's point-cloud
# range (voxelize_cfg.point_cloud_range), as the baselines do.
clap_model = dict(
    type='CLAPPretrainer',
    data_preprocessor=dict(type='CLAPPretrainDataPreprocessor'),  # also keeps the raw images (RGB targets)
    bbox_head=None,
    lidar_mask_ratio=0.9,
    camera_mask_ratio=0.9,
    mask_block_size=[0.6, 0.6],  # one BEV cell: 8 x 8 voxels of 0.075 m
    image_patch_size=32,
    render_camera=True,
    camera_range_targets=True,
    proto_max_cells=2048,
    keyframe_dim=4,
    volume_lifter=dict(type='CLAPBEVVolumeLifter', in_channels=512, volume_channels=32, num_z=5, num_conv3d=2),
    rendering_head=dict(
        type='CLAPRenderingHead',
        in_channels=32,
        coord_scale=1.0 / 54,
        num_stratified=72,
        num_importance=24,
        near=1.0,
        ray_chunk_size=4096,
        loss_range_weight=2.0,
        loss_surface_weight=0.1,
        loss_rgb_weight=0.1),
    ray_selector=dict(
        type='CurvatureRaySelector',
        num_lidar_rays=8192,
        num_pixels_per_camera=1024,
        warmup_epochs=4,
        weighting='curvature',  # 'uniform': uniform draws in every epoch (Table 3 ablation)
        estimator='finite_difference',
        num_candidates=8192,
        gaussian_kernel_size=9,
        pixel_floor=0.1),
    prototype_loss=dict(
        type='SwappedPrototypeLoss',
        lidar_channels=256,
        camera_channels=80,
        embed_dim=128,
        num_prototypes=512,
        temperature=1.0,  # paper value; SwAV's 0.1 gives the swap term its full range (see README)
        sinkhorn_epsilon=0.05,
        sinkhorn_iterations=3,
        loss_swap_weight=1.0,
        loss_em_weight=0.1),
    gram_regularizer=dict(type='GramRegularizer', loss_weight=0.1))
# unit-norm prototypes and the NeuS sharpness exponent are no weights to shrink
clap_paramwise_cfg = dict(custom_keys={'prototypes': dict(decay_mult=0.0), 'sharpness_v': dict(decay_mult=0.0)})

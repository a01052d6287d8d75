# A small CPU variant of CLAP pre-training for the demo, the tests and CI: the same model and losses as
# clap_pretrain_nus.py on the narrow BEVFusion (128x352 images, 0.15 m voxels, 90 x 90 BEV), with small ray
# budgets (512 LiDAR + 6 x 48 camera rays, 24 + 8 samples), 64 prototypes of 32 and a 1-epoch warm-up.
# The swap and EM temperatures are SwAV's 0.1 rather than the paper's 1.0: on cosine scores tau = 1 leaves
# the swap cross-entropy about one nat of range, too weak a signal for runs of a few hundred iterations.
_base_ = ['./_base_/pretrain/nus-3d_pretrain_cpu-tiny.py', './_base_/pretrain/clap_model.py']
model = dict(
    _base_.clap_model,
    mask_block_size=[1.2, 1.2],  # one BEV cell: 8 x 8 voxels of 0.15 m
    image_patch_size=16,
    proto_max_cells=256,
    volume_lifter=dict(_base_.clap_model.volume_lifter, in_channels=256, volume_channels=16, num_conv3d=1),
    rendering_head=dict(_base_.clap_model.rendering_head, in_channels=16, num_stratified=24, num_importance=8,
                        up_sample_steps=2, ray_chunk_size=1024),
    ray_selector=dict(_base_.clap_model.ray_selector, num_lidar_rays=512, num_pixels_per_camera=48,
                      warmup_epochs=1, num_candidates=1024, gaussian_kernel_size=5),
    prototype_loss=dict(_base_.clap_model.prototype_loss, lidar_channels=128, camera_channels=32, embed_dim=32,
                        hidden_channels=64, num_prototypes=64, temperature=0.1, em_temperature=0.1))

# the shared tiny base schedules 4 epochs of AdamW at 5e-4; CLAP's rendering field trains at 2e-4
optim_wrapper = dict(optimizer=dict(lr=2e-4), paramwise_cfg=_base_.clap_paramwise_cfg)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max={{_base_.max_epochs}}, eta_min=2e-6, by_epoch=True, begin=0,
         end={{_base_.max_epochs}}, convert_to_iter_based=True)
]
custom_hooks = [
    dict(type='PrototypeEMHook', interval=5, freeze_iters=4),
    dict(type='CLAPVisualizationHook', interval=10, camera=0, stride=4),
]
default_hooks = dict(logger=dict(interval=2))

# Table 3 row "separate pre-training" (UniPAD-style), camera half (see _base_/unipad_halves.py) on the full-size
# model: its 80-channel camera BEV feeds the BEV backbone, 512 rays per camera. Merge with the LiDAR half:
# tools/merge_pretrained.py.
_base_ = ['../clap_pretrain_nus.py', './_base_/unipad_halves.py']
model = dict(_base_.unipad_camera_half, pts_backbone=dict(in_channels=80),
             ray_selector=dict(_base_.unipad_uniform_rays, num_pixels_per_camera=512, pixel_policy='through_points'))
custom_hooks = []

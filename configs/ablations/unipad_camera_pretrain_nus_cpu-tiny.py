# CPU-tiny variant of unipad_camera_pretrain_nus.py: the camera half (see _base_/unipad_halves.py) on the CPU-tiny
# model (32-channel camera BEV into the BEV backbone), 24 rays per camera (half of CLAP's per-camera budget, as in
# the full configs). Merge with the LiDAR half: tools/merge_pretrained.py.
_base_ = ['../clap_pretrain_nus_cpu-tiny.py', './_base_/unipad_halves.py']
model = dict(_base_.unipad_camera_half, pts_backbone=dict(in_channels=32),
             ray_selector=dict(_base_.unipad_uniform_rays, num_pixels_per_camera=24, pixel_policy='through_points'))
custom_hooks = []

# CPU-tiny variant of unipad_lidar_pretrain_nus.py: the LiDAR half (see _base_/unipad_halves.py) on the CPU-tiny
# model, whose LiDAR BEV has 128 channels.
_base_ = ['../clap_pretrain_nus_cpu-tiny.py', './_base_/unipad_halves.py']
model = dict(_base_.unipad_lidar_half, pts_backbone=dict(in_channels=128), ray_selector=_base_.unipad_uniform_rays)
custom_hooks = []

# Table 3 row "separate pre-training" (UniPAD-style), LiDAR half (see _base_/unipad_halves.py) on the full-size
# model. Merge with the camera half: python tools/merge_pretrained.py LIDAR.pth CAMERA.pth OUT.pth
_base_ = ['../clap_pretrain_nus.py', './_base_/unipad_halves.py']
model = dict(_base_.unipad_lidar_half, ray_selector=_base_.unipad_uniform_rays)
custom_hooks = []

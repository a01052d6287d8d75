# Table 3 row "joint + curvature sampling": joint rendering pre-training with Curvature Sampling after the
# 4-epoch warm-up, no prototypes. The last row ("+ prototypes", full CLAP) is configs/clap_pretrain_nus.py.
_base_ = ['../clap_pretrain_nus.py']
model = dict(prototype_loss=None, gram_regularizer=None)
custom_hooks = [dict(type='CLAPVisualizationHook', interval=500, camera=0, stride=8)]

# Table 3 row "joint + uniform sampling": joint camera + LiDAR rendering pre-training with uniform ray
# sampling throughout (the curvature warm-up never ends) and no prototypes.
_base_ = ['../clap_pretrain_nus.py']
model = dict(
    prototype_loss=None,
    gram_regularizer=None,
    ray_selector=dict(weighting='uniform'))  # uniform draws in every epoch
custom_hooks = [dict(type='CLAPVisualizationHook', interval=500, camera=0, stride=8)]

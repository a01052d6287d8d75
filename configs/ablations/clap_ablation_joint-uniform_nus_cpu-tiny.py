# CPU-tiny variant of clap_ablation_joint-uniform_nus.py (Table 3 "joint + uniform sampling"): the CPU-tiny
# CLAP pre-training without prototypes, with uniform ray sampling throughout.
_base_ = ['../clap_pretrain_nus_cpu-tiny.py']
model = dict(prototype_loss=None, gram_regularizer=None, ray_selector=dict(weighting='uniform'))
custom_hooks = [dict(type='CLAPVisualizationHook', interval=10, camera=0, stride=4)]

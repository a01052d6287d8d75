# CPU-tiny variant of clap_ablation_joint-curvature_nus.py (Table 3 "joint + curvature sampling"): the CPU-tiny
# CLAP pre-training without prototypes; Curvature Sampling after the tiny config's 1-epoch warm-up.
_base_ = ['../clap_pretrain_nus_cpu-tiny.py']
model = dict(prototype_loss=None, gram_regularizer=None)
custom_hooks = [dict(type='CLAPVisualizationHook', interval=10, camera=0, stride=4)]

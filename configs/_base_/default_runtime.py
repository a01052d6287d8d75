# Runtime defaults shared by the pre-training and fine-tuning configs (mmengine Runner).
default_scope = 'mmdet3d'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # short logging / checkpoint intervals so that short runs (CPU demo, tests) log and save
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # CheckpointHook's arguments; saves through a temporary file and a rename, never half-written
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='Det3DVisualizationHook'),
    # random streams and data position in every checkpoint: --resume ends where the uninterrupted run ends
    exact_resume=dict(type='ExactResumeHook'),
    # a NaN / Inf loss term stops the run before the optimizer step ('skip': skip such steps and count them)
    nonfinite_loss=dict(type='NonFiniteLossHook', policy='raise'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py and tools/test.py switch this to 'gloo' on machines without CUDA
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Det3DLocalVisualizer', vis_backends=vis_backends, name='visualizer')

log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False

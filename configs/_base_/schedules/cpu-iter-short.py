# A short iteration-based schedule for CPU runs (demo, tests): AdamW with BEVFusion's weight decay and grad
# clip, a linear warm-up over 20 iterations, then a cosine decay to 1% of lr at `max_iters`.
# The cosine end is fixed when the config is read: to change the length, set both
# `train_cfg.max_iters=N` and `param_scheduler.1.end=N` (or override `max_iters` in a derived config).
lr = 1e-3
max_iters = 400
warmup_iters = 20

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', eta_min=lr * 0.01, by_epoch=False, begin=warmup_iters, end=max_iters),
]

# PauselessIterBasedTrainLoop (clap_plugin.engine.loops) is mmengine's IterBasedTrainLoop without its 2 s pause
# at each pass over a worker-less dataloader: the same batches in the same order, a quarter less time on a
# 20-sample subset. A config using this schedule imports clap_plugin (`custom_imports`).
train_cfg = dict(type='PauselessIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

auto_scale_lr = dict(enable=False, base_batch_size=2)

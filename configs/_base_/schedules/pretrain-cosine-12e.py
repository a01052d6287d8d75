# The pre-training schedule of CLAP and its baselines (arXiv 2412.03059, "same data, same schedule"): 12 epochs
# of AdamW (lr 5e-5, weight decay 0.01, grad-norm clip 35), cosine decay to 1% of lr, stepped per iteration.
max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-5, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=5e-7, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True)
]
# a pre-trainer leaves some encoder modules without gradient (a baseline) or turns loss terms on late (CLAP)
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
# base batch = 8 GPUs x 4 samples; enable with tools/train.py --auto-scale-lr
auto_scale_lr = dict(enable=False, base_batch_size=32)

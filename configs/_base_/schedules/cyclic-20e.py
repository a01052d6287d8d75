# BEVFusion's cyclic 20-epoch fine-tune schedule: AdamW (lr 2e-4, weight decay 0.01), the learning rate
# rises over the first 8 epochs (cosine, to 10x lr) and falls over the last 12 (to 1e-4 x lr); AdamW's beta1
# (the "momentum") falls to 0.85 while the lr rises and returns to 0.95 while it falls; grad-norm clip 35.
lr = 2e-4

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))

param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=8, eta_min=lr * 10, begin=0, end=8, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=12, eta_min=lr * 1e-4, begin=8, end=20, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingMomentum', T_max=8, eta_min=0.85 / 0.95, begin=0, end=8, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingMomentum', T_max=12, eta_min=1, begin=8, end=20, by_epoch=True,
         convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# base batch = 8 GPUs x 4 samples; enable with tools/train.py --auto-scale-lr
auto_scale_lr = dict(enable=False, base_batch_size=32)

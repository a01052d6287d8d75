# Shared by the full-size pre-training configs (CLAP and the baselines in projects/): the BEVFusion lidar-cam
# model of _base_/models/bevfusion_lidar-cam.py, the label-free nuScenes data of nus-3d_pretrain.py and the
# 12-epoch schedule of _base_/schedules/pretrain-cosine-12e.py. A method config adds its `model` keys.
_base_ = [
    '../default_runtime.py', '../models/bevfusion_lidar-cam.py', './nus-3d_pretrain.py',
    '../schedules/pretrain-cosine-12e.py'
]

# scalars (losses, lr) also as TensorBoard event files under WORK_DIR/TIMESTAMP/vis_data (tensorboard --logdir)
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(vis_backends=vis_backends)

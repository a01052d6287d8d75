# A small CPU variant of SimIPU pre-training for the demo, the tests and CI: the same model and losses as
# simipu_pretrain_nus.py on the narrow BEVFusion of configs/_base_/models/bevfusion_cpu-tiny.py (LiDAR BEV 128
# channels, image neck 64), 512 keypoints, 1024 point-pixel pairs, 4 epochs.
#   python tools/train.py projects/SimIPU/configs/simipu_pretrain_nus_cpu-tiny.py --cfg-options data_root=DIR/
_base_ = ['../../../configs/_base_/pretrain/nus-3d_pretrain_cpu-tiny.py', './_base_/simipu_model.py']
custom_imports = dict(imports=['clap_plugin', 'projects.SimIPU.simipu'], allow_failed_imports=False)

model = dict(_base_.simipu_model, lidar_channels=128, image_channels=64, hidden_channels=128, num_keypoints=512,
             num_pairs=1024)

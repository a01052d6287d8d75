# The nuScenes sensor data shared by the fine-tune data base (nus-3d_lidar-cam.py) and the pre-training data base
# (../pretrain/nus-3d_pretrain.py): dataset type, root, modality, file prefixes and the range of the range filters.
# `data_point_cloud_range` equals the model configs' `point_cloud_range`, under a name of its own because mmengine
# refuses a key that two bases of one config both set (tests/utils/test_config_ranges.py checks that they agree).
# `data_root` is overridable: `--cfg-options data_root=/path/` (tools/train.py / test.py rewrite every path under
# the old root).
dataset_type = 'NuScenesDataset'
data_root = 'data/nuscenes/'
data_point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
input_modality = dict(use_lidar=True, use_camera=True)
backend_args = None
data_prefix = dict(
    pts='samples/LIDAR_TOP',
    sweeps='sweeps/LIDAR_TOP',
    CAM_FRONT='samples/CAM_FRONT',
    CAM_FRONT_LEFT='samples/CAM_FRONT_LEFT',
    CAM_FRONT_RIGHT='samples/CAM_FRONT_RIGHT',
    CAM_BACK='samples/CAM_BACK',
    CAM_BACK_RIGHT='samples/CAM_BACK_RIGHT',
    CAM_BACK_LEFT='samples/CAM_BACK_LEFT')

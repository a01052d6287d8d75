"""lidar_only_settings: the LiDAR-only fine-tune keys from a lidar-cam base, whatever wrappers its loaders have."""
import os.path as osp

from mmengine.config import Config

from clap_plugin.datasets.lidar_only import CAMERA_STEPS, lidar_only_settings
from tests.helpers.paths import REPO

LIDAR_ONLY = dict(use_lidar=True, use_camera=False)


def _innermost(loader):
    node = loader['dataset']
    depth = 0
    while 'dataset' in node:
        node, depth = node['dataset'], depth + 1
    return node, depth


def test_lidar_only_settings_reach_the_innermost_dataset_of_either_base():
    bases = (('bevfusion_lidar-cam_finetune_nus.py', 2), ('bevfusion_lidar-cam_finetune_nus_cpu-tiny.py', 1))
    for name, wrappers in bases:
        base = Config.fromfile(osp.join(REPO, 'configs', name))
        db = dict(type='CLAPDataBaseSampler', rate=1.0)
        s = lidar_only_settings(base.train_pipeline, base.test_pipeline, db, '/data/nus/', ['car'],
                                base.train_dataloader, base.val_dataloader)
        inner, depth = _innermost(s.train_dataloader)
        assert depth == wrappers  # CBGS + label fraction (full size), label fraction (CPU-tiny)
        assert inner['modality'] == LIDAR_ONLY and inner['pipeline'] == s.train_pipeline
        assert _innermost(s.val_dataloader)[0]['modality'] == LIDAR_ONLY
        assert not any(step['type'] in CAMERA_STEPS for step in s.train_pipeline + s.test_pipeline)
        sample = [step for step in s.train_pipeline if step['type'] == 'ObjectSample']
        assert len(sample) == 1 and sample[0]['db_sampler']['info_path'] == '/data/nus/nuscenes_dbinfos_train.pkl'
        assert s.model == dict(img_backbone=None, img_neck=None, view_transform=None, fusion_layer=None)
        # the base's dicts are copied, never changed in place
        assert _innermost(base.train_dataloader)[0].get('modality') != LIDAR_ONLY

"""LabelFractionDataset keeps a fixed, seeded subset of the training samples."""
import os.path as osp

import numpy as np
import pytest

from clap_plugin.datasets.label_fraction import LabelFractionDataset, label_fraction_indices

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class _ListDataset:
    """A minimal dataset: sample i is {'idx': i}."""

    def __init__(self, n):
        self.n = n
        self.metainfo = dict(classes=('a', 'b'))
        self.full_init_calls = 0

    def full_init(self):
        self.full_init_calls += 1

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {'idx': i}

    def get_data_info(self, i):
        return {'idx': i, 'info': True}

    def get_cat_ids(self, i):
        return [i % 2]


def test_subset_size_and_determinism():
    for n, f in ((100, 0.05), (100, 0.5), (37, 0.1), (28130, 0.05), (10, 1.0), (3, 0.01)):
        idx = label_fraction_indices(n, f, seed=0)
        assert len(idx) == max(1, int(round(f * n)))
        assert idx == sorted(set(idx)) and 0 <= idx[0] and idx[-1] < n
        assert idx == label_fraction_indices(n, f, seed=0)
    assert label_fraction_indices(10, 1.0, 3) == list(range(10))
    a, b = label_fraction_indices(1000, 0.05, 0), label_fraction_indices(1000, 0.05, 1)
    assert a != b
    # not just the first samples: the subset is spread over the whole set
    assert a[-1] > 500 and a[0] < 500


def test_smaller_fraction_is_nested_in_larger():
    small = set(label_fraction_indices(1000, 0.01, seed=4))
    large = set(label_fraction_indices(1000, 0.05, seed=4))
    assert small < large


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match='fraction'):
        label_fraction_indices(10, 0.0, 0)
    with pytest.raises(ValueError, match='fraction'):
        label_fraction_indices(10, 1.5, 0)
    with pytest.raises(TypeError, match='fraction'):
        label_fraction_indices(10, '0.5', 0)
    with pytest.raises(ValueError, match='seed'):
        label_fraction_indices(10, 0.5, -1)
    with pytest.raises(ValueError, match='empty'):
        label_fraction_indices(0, 0.5, 0)
    with pytest.raises(ValueError, match='fraction'):
        LabelFractionDataset(_ListDataset(5), fraction=2.0)
    with pytest.raises(TypeError, match='dataset'):
        LabelFractionDataset(42, fraction=0.5)


def test_wrapper_maps_to_kept_samples():
    base = _ListDataset(40)
    ds = LabelFractionDataset(base, fraction=0.25, seed=3)
    expected = label_fraction_indices(40, 0.25, 3)
    assert len(ds) == 10 and ds.indices == expected
    assert [ds[i]['idx'] for i in range(len(ds))] == expected
    assert ds.get_data_info(2) == {'idx': expected[2], 'info': True}
    assert ds.get_cat_ids(1) == [expected[1] % 2]
    assert ds[-1]['idx'] == expected[-1]
    with pytest.raises(IndexError, match='out of range'):
        ds[10]
    assert ds.metainfo == base.metainfo
    lazy = LabelFractionDataset(_ListDataset(40), fraction=0.25, seed=3, lazy_init=True)
    assert lazy.dataset.full_init_calls == 0
    assert lazy[0]['idx'] == expected[0] and lazy.dataset.full_init_calls == 1


def test_built_from_config_on_nuscenes(synthetic_nus, nus_prefix):
    """From a config through the DATASETS registry, around mmdet3d's NuScenesDataset."""
    from mmdet3d.registry import DATASETS
    inner = dict(type='NuScenesDataset', data_root=synthetic_nus, ann_file='nuscenes_infos_train.pkl',
                 data_prefix=nus_prefix, pipeline=[], metainfo=dict(classes=['car', 'pedestrian']),
                 modality=dict(use_lidar=True, use_camera=False), test_mode=True, box_type_3d='LiDAR')
    full = DATASETS.build(inner)
    ds = DATASETS.build(dict(type='LabelFractionDataset', dataset=inner, fraction=0.5, seed=1))
    expected = label_fraction_indices(len(full), 0.5, 1)
    assert len(ds) == len(expected) and len(ds) < len(full)
    tokens = [ds.get_data_info(i)['token'] for i in range(len(ds))]
    assert tokens == [full.get_data_info(i)['token'] for i in expected]
    assert ds.metainfo['classes'] == full.metainfo['classes']


def test_cfg_options_reach_the_wrapper():
    from clap_plugin.apis import load_config, merge_cfg_options
    cfg = load_config(osp.join(REPO, 'configs/bevfusion_lidar-cam_finetune_nus.py'))
    wrapper = cfg.train_dataloader.dataset.dataset
    assert wrapper.type == 'LabelFractionDataset' and wrapper.fraction == 0.05 and wrapper.seed == 0
    assert cfg.train_dataloader.dataset.type == 'CBGSDataset'
    cfg = merge_cfg_options(cfg, {'label_fraction': 0.025, 'label_fraction_seed': 7,
                                  'data_root': '/data/nus', 'nus_version': 'v1.0-mini'})
    wrapper = cfg.train_dataloader.dataset.dataset
    assert (wrapper.fraction, wrapper.seed) == (0.025, 7)
    assert wrapper.dataset.data_root == '/data/nus/'
    assert wrapper.dataset.metainfo.version == 'v1.0-mini'
    assert cfg.val_evaluator.ann_file == '/data/nus/nuscenes_infos_val.pkl'
    assert cfg.val_evaluator.data_root == '/data/nus/'
    assert cfg.test_dataloader.dataset.data_root == '/data/nus/'
    assert cfg.test_dataloader.dataset.metainfo.version == 'v1.0-mini'
    # prefixes relative to the root are untouched
    assert wrapper.dataset.data_prefix.pts == 'samples/LIDAR_TOP'
    with pytest.raises(SystemExit, match='nus_version'):
        merge_cfg_options(load_config(osp.join(REPO, 'configs/bevfusion_lidar-cam_finetune_nus.py')),
                          {'nus_version': 'v2'})


def test_lidar_only_config_has_no_camera_parts():
    from clap_plugin.apis import load_config
    cfg = load_config(osp.join(REPO, 'configs/bevfusion_lidar_finetune_nus.py'))
    for key in ('img_backbone', 'img_neck', 'view_transform', 'fusion_layer'):
        assert cfg.model[key] is None
    types = [s['type'] for s in cfg.train_dataloader.dataset.dataset.dataset.pipeline]
    assert 'CLAPLoadMultiViewImageFromFiles' not in types and 'CLAPImageAug3D' not in types
    assert cfg.train_dataloader.dataset.dataset.dataset.modality.use_camera is False
    assert cfg.val_evaluator.type == 'CLAPNuScenesMetric'
    full = load_config(osp.join(REPO, 'configs/bevfusion_lidar-cam_finetune_nus.py'))
    steps = {s['type']: s for s in full.train_dataloader.dataset.dataset.dataset.pipeline}
    assert steps['CLAPImageAug3D']['final_dim'] == [256, 704]
    assert steps['CLAPLoadPointsFromMultiSweeps']['sweeps_num'] == 9
    assert np.isclose(full.optim_wrapper.optimizer.lr, 2e-4)
    assert full.optim_wrapper.clip_grad.max_norm == 35

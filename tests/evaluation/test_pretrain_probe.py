"""The pre-training probe measures what it says: boxes, cells, AP, and the probe tool end to end."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.fileio import load

from clap_plugin.evaluation.pretrain_probe import (
    average_precision,
    bev_cells_in_boxes,
    boxes_of_info,
    linear_probe_ap,
    points_in_boxes,
    probe_pipeline,
)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def test_probe_pipeline_is_deterministic_on_a_sample_with_more_sweeps_than_it_loads(synthetic_nus):
    """Without test_mode mmdet3d's sweep loader draws sweeps at random; the probe must load the nearest ones."""
    from mmdet3d.registry import DATASETS
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'clap_pretrain_nus_cpu-tiny.py'))
    pipeline = probe_pipeline(cfg.train_dataloader.dataset.pipeline)
    types = [t['type'] for t in pipeline]
    assert 'CLAPGlobalRotScaleTrans' not in types and 'CLAPBEVFlip3D' not in types
    sweeps = next(t for t in pipeline if t['type'] == 'CLAPLoadPointsFromMultiSweeps')
    assert sweeps['test_mode'] is True
    sweeps['sweeps_num'] = 1  # the synthetic samples record 2 sweeps: a random loader would pick either
    ds_cfg = dict(cfg.train_dataloader.dataset, data_root=synthetic_nus + '/', pipeline=pipeline, test_mode=True)
    ds = DATASETS.build(ds_cfg)
    idx = next(i for i in range(len(ds)) if len(ds.get_data_info(i).get('lidar_sweeps', [])) > 1)
    first = [ds[idx]['inputs']['points'].clone() for _ in range(8)]
    assert all(torch.equal(first[0], p) for p in first[1:])


def test_points_in_boxes_reproduces_num_lidar_pts(synthetic_nus):
    infos = load(osp.join(synthetic_nus, 'nuscenes_infos_train.pkl'))['data_list']
    checked = 0
    for info in infos:
        path = osp.join(synthetic_nus, 'samples', 'LIDAR_TOP', info['lidar_points']['lidar_path'])
        pts = torch.from_numpy(np.fromfile(path, dtype=np.float32).reshape(-1, 5)[:, :3])
        inside = points_in_boxes(pts, boxes_of_info(info))
        for k, inst in enumerate(info['instances']):
            assert int(inside[:, k].sum()) == inst['num_lidar_pts']
            checked += 1
    assert checked > 0


def test_bev_cells_follow_a_rotated_footprint():
    # a 4 x 2 m box at (10, 0) turned by 90 degrees covers x in [9, 11], y in [-2, 2]
    boxes = torch.tensor([[10.0, 0.0, 0.0, 4.0, 2.0, 1.5, np.pi / 2]])
    cells = bev_cells_in_boxes((108, 108), [-54, -54, -5, 54, 54, 3], boxes)  # 1 m cells, centres at k + 0.5
    xs, ys = torch.nonzero(cells, as_tuple=True)
    centres_x, centres_y = xs.float() - 54 + 0.5, ys.float() - 54 + 0.5
    assert set(centres_x.tolist()) == {9.5, 10.5} and set(centres_y.tolist()) == {-1.5, -0.5, 0.5, 1.5}


def test_average_precision_against_a_hand_computed_case():
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    labels = torch.tensor([1, 0, 1, 0])
    assert average_precision(scores, labels) == pytest.approx((1.0 + 2 / 3) / 2)
    with pytest.raises(ValueError, match='positive'):
        average_precision(scores, torch.zeros(4))


def test_linear_probe_separates_informative_features_only():
    g = torch.Generator().manual_seed(0)
    y = torch.rand(2000, generator=g) < 0.1
    signal = torch.randn(2000, 8, generator=g) + y[:, None].float() * 2.0
    noise = torch.randn(2000, 8, generator=g)
    tr, te = slice(0, 1500), slice(1500, None)
    assert linear_probe_ap(signal[tr], y[tr], signal[te], y[te]) > 0.8
    assert linear_probe_ap(noise[tr], y[tr], noise[te], y[te]) < 0.3


def test_probe_tool_writes_its_figures(synthetic_nus, tmp_path):
    out = tmp_path / 'probe.json'
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'benchmarks', 'probe_pretraining.py'),
                           osp.join(ROOT, 'configs', 'clap_pretrain_nus_cpu-tiny.py'), '--data-root', synthetic_nus,
                           '--max-train', '2', '--max-val', '1', '--out', str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res['checkpoint'] == 'random-init' and res['train_samples'] == 2
    assert res['prototypes']['zero_lidar_share'] == 0.0 and res['prototypes']['cells'] > 0
    assert set(res['curvature_enrichment']) >= {'fd_0.06m', 'exact'}
    assert set(res['linear_probe_ap']) == {'lidar', 'camera', 'fused'}
    assert all(0.0 <= v <= 1.0 for v in res['linear_probe_ap'].values())

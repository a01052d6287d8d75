"""tools/create_data.py on a tree without camera sweeps (as the common nuScenes download), --workers and
progress, the GT-sampling database, and ObjectSample + its switch-off in the LiDAR-only fine-tune recipe."""
import copy
import json
import os
import os.path as osp
import pickle
import shutil
import sys

import numpy as np
import pytest

from tests.helpers.paths import REPO

LIDAR_TINY = osp.join(REPO, 'configs/bevfusion_lidar_finetune_nus_cpu-tiny.py')


def _copy_tree(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns('*.pkl', 'synthetic_gt', '*_gt_database'))
    return dst


def _add_camera_sweep_records(root):
    """sample_data records of camera sweeps whose files are absent, as in a download without camera sweeps."""
    path = osp.join(root, 'v1.0-mini', 'sample_data.json')
    with open(path) as f:
        records = json.load(f)
    cams = [r for r in records if r['is_key_frame'] and r['filename'].startswith('samples/CAM_')]
    added = []
    for i, rec in enumerate(cams):
        sweep = dict(rec, token=f'camsweep{i:04d}', is_key_frame=False, prev='', next='',
                     filename=rec['filename'].replace('samples/', 'sweeps/').replace('.jpg', f'_s{i}.jpg'),
                     timestamp=rec['timestamp'] - 50000)
        added.append(sweep)
    with open(path, 'w') as f:
        json.dump(records + added, f)
    assert not any(osp.exists(osp.join(root, r['filename'])) for r in added)
    return added


@pytest.fixture(scope='module')
def no_camera_sweeps(synthetic_nus, tmp_path_factory):
    root = _copy_tree(synthetic_nus, str(tmp_path_factory.mktemp('nocamsweeps') / 'nuscenes'))
    added = _add_camera_sweep_records(root)
    return root, added


@pytest.fixture(scope='module')
def converted(no_camera_sweeps):
    """create_data.py with 2 workers on the tree without camera sweeps: infos and GT database."""
    import subprocess
    root, _ = no_camera_sweeps
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'create_data.py'), 'nuscenes', '--root-path', root,
                           '--out-dir', root, '--extra-tag', 'nuscenes', '--version', 'v1.0-mini', '--workers', '2'],
                          capture_output=True, text=True, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS='1'),
                          timeout=600)
    return root, proc


def test_tree_without_camera_sweeps_converts(converted):
    root, proc = converted
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ('nuscenes_infos_train.pkl', 'nuscenes_infos_val.pkl', 'nuscenes_dbinfos_train.pkl'):
        assert osp.isfile(osp.join(root, name)), name
    assert osp.isdir(osp.join(root, 'nuscenes_gt_database'))
    assert not [n for n in os.listdir(root) if n.startswith('.')]  # no temporary leftovers
    # progress: the file check and the conversion of the 2 workers
    assert '[create_data] checked' in proc.stderr and '[create_data] converted 6/6 samples' in proc.stderr


def test_old_check_would_have_refused_it_and_camera_sweeps_are_not_read(no_camera_sweeps):
    from clap_plugin.datasets.nuscenes_validation import load_tables, required_sensor_files
    root, added = no_camera_sweeps
    tables = load_tables(osp.join(root, 'v1.0-mini'))
    required = {r['token'] for r, _ in required_sensor_files(tables, max_sweeps=10)}
    assert not required & {r['token'] for r in added}
    lidar_sweeps = [r for r in tables['sample_data'] if not r['is_key_frame'] and 'LIDAR_TOP' in r['filename']]
    assert lidar_sweeps and {r['token'] for r in lidar_sweeps} <= required
    assert not {r['token'] for r in lidar_sweeps} & {r['token'] for r, _ in required_sensor_files(tables, 0)}


def test_workers_give_the_same_infos_as_one_process(converted, tmp_path):
    from clap_plugin.datasets.nuscenes_converter import create_nuscenes_infos
    root, proc = converted
    assert proc.returncode == 0
    out = str(tmp_path / 'serial')
    create_nuscenes_infos(root, out, version='v1.0-mini', max_sweeps=10, workers=1)
    for split in ('train', 'val'):
        with open(osp.join(root, f'nuscenes_infos_{split}.pkl'), 'rb') as f:
            parallel = pickle.load(f)['data_list']
        with open(osp.join(out, f'nuscenes_infos_{split}.pkl'), 'rb') as f:
            serial = pickle.load(f)['data_list']
        assert [d['token'] for d in parallel] == [d['token'] for d in serial]
        for a, b in zip(parallel, serial):
            assert len(a['lidar_sweeps']) == len(b['lidar_sweeps']) and len(a['instances']) == len(b['instances'])
            assert np.allclose(a['lidar_points']['lidar2ego'], b['lidar_points']['lidar2ego'])


def test_relative_root_path_writes_infos_and_the_database(no_camera_sweeps, tmp_path, monkeypatch):
    """`make demo` passes a relative data root: the database step must not join it twice."""
    from clap_plugin.apis import create_data
    _copy_tree(no_camera_sweeps[0], str(tmp_path / 'data' / 'nus'))
    monkeypatch.chdir(tmp_path)
    assert create_data.main(['nuscenes', '--root-path', 'data/nus', '--out-dir', 'data/nus', '--version',
                             'v1.0-mini', '--quiet']) == 0
    for name in ('nuscenes_infos_train.pkl', 'nuscenes_infos_val.pkl', 'nuscenes_dbinfos_train.pkl'):
        assert osp.isfile(osp.join(tmp_path, 'data', 'nus', name)), name
    assert os.listdir(osp.join(tmp_path, 'data', 'nus', 'nuscenes_gt_database'))


def test_missing_lidar_sweep_is_named_and_max_sweeps_0_passes(no_camera_sweeps, tmp_path):
    from clap_plugin.apis import create_data
    root = _copy_tree(no_camera_sweeps[0], str(tmp_path / 'nus'))
    sweep = next(n for n in sorted(os.listdir(osp.join(root, 'sweeps', 'LIDAR_TOP'))))
    os.remove(osp.join(root, 'sweeps', 'LIDAR_TOP', sweep))
    args = ['nuscenes', '--root-path', root, '--out-dir', root, '--version', 'v1.0-mini', '--no-dbinfos', '--quiet']
    assert create_data.main(args) == 2
    assert not [n for n in os.listdir(root) if n.endswith('.pkl')]
    assert create_data.main(args + ['--max-sweeps', '0']) == 0
    assert osp.isfile(osp.join(root, 'nuscenes_infos_train.pkl'))


def test_missing_lidar_sweep_message(no_camera_sweeps, tmp_path, capsys):
    from clap_plugin.apis import create_data
    root = _copy_tree(no_camera_sweeps[0], str(tmp_path / 'nus'))
    sweep = sorted(os.listdir(osp.join(root, 'sweeps', 'LIDAR_TOP')))[0]
    os.remove(osp.join(root, 'sweeps', 'LIDAR_TOP', sweep))
    create_data.main(['nuscenes', '--root-path', root, '--out-dir', root, '--version', 'v1.0-mini', '--quiet'])
    err = capsys.readouterr().err
    assert sweep in err and 'LiDAR sweep' in err and '--max-sweeps 0' in err


def test_gt_database_matches_the_annotations(converted):
    root, proc = converted
    assert proc.returncode == 0
    with open(osp.join(root, 'nuscenes_dbinfos_train.pkl'), 'rb') as f:
        dbinfos = pickle.load(f)
    with open(osp.join(root, 'nuscenes_infos_train.pkl'), 'rb') as f:
        train = pickle.load(f)['data_list']
    # mmdet3d keeps the boxes with LiDAR points (use_valid_flag)
    n_boxes = sum(bool(i['bbox_3d_isvalid']) for d in train for i in d['instances'])
    assert sum(len(v) for v in dbinfos.values()) == n_boxes and n_boxes > 0
    entry = max((e for v in dbinfos.values() for e in v), key=lambda e: e['num_points_in_gt'])
    points = np.fromfile(osp.join(root, entry['path']), dtype=np.float32).reshape(-1, 5)
    assert points.shape[0] == entry['num_points_in_gt'] > 0
    # points are stored relative to the box centre, inside the box
    half = entry['box3d_lidar'][3:6] / 2 + 0.05
    assert np.all(np.abs(points[:, :2]) <= np.linalg.norm(half[:2]) + 1e-3)


def _tiny_train_dataset(root):
    from mmdet3d.registry import DATASETS

    from clap_plugin.apis import load_config, merge_cfg_options
    cfg = merge_cfg_options(load_config(LIDAR_TINY), dict(data_root=root + '/'))
    return DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset)), cfg


def test_object_sample_pastes_database_objects(converted):
    from clap_plugin.engine.hooks.disable_object_sample_hook import object_samplers
    root, proc = converted
    assert proc.returncode == 0
    dataset, _ = _tiny_train_dataset(root)
    samplers = object_samplers(dataset)
    assert len(samplers) == 1
    np.random.seed(0)
    with_gt = [len(dataset[i]['data_samples'].gt_instances_3d) for i in range(len(dataset))]
    samplers[0].disabled = True
    np.random.seed(0)
    without = [len(dataset[i]['data_samples'].gt_instances_3d) for i in range(len(dataset))]
    assert sum(with_gt) > sum(without), (with_gt, without)


def test_hook_disables_object_sample_for_the_last_epoch(converted, tmp_path):
    from clap_plugin.apis import train
    root, proc = converted
    assert proc.returncode == 0
    from clap_plugin.engine.hooks.disable_object_sample_hook import object_samplers
    runner = train.main([LIDAR_TINY, '--work-dir', str(tmp_path), '--cfg-options', f'data_root={root}/',
                         'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None'])
    assert runner.epoch == 2
    assert all(t.disabled for t in object_samplers(runner.train_dataloader.dataset))
    with open(osp.join(tmp_path, sorted(d for d in os.listdir(tmp_path) if d[:2] == '20')[-1],
                       sorted(d for d in os.listdir(tmp_path) if d[:2] == '20')[-1] + '.log')) as f:
        log = f.read()
    assert 'epoch 1: ObjectSample disabled' in log and 'epoch 0: ObjectSample disabled' not in log

"""tools/create_data.py --check full / --check-only: every image decoded (a JPEG with an intact header and a
garbage body is caught, which the cheap check and OpenCV let through), every point file read; all bad files
listed with file, token and sensor, before any info file is written."""
import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest

from clap_plugin.apis import create_data
from tests.datasets.corrupt import copy_tree, corrupt_jpeg, truncate


@pytest.fixture(scope='module')
def bad_raw_tree(synthetic_nus, tmp_path_factory):
    """A tree without infos: one CAM_FRONT keyframe JPEG with its header kept, its body random and its
    end-of-image marker put back (same size), and one LiDAR sweep truncated by 7 bytes."""
    root = copy_tree(synthetic_nus, str(tmp_path_factory.mktemp('checkfull') / 'nuscenes'), keep_infos=False)
    with open(osp.join(root, 'v1.0-mini', 'sample_data.json')) as f:
        records = json.load(f)
    cam = next(r for r in records if r['filename'].startswith('samples/CAM_FRONT/'))
    sweep = next(r for r in records if r['filename'].startswith('sweeps/LIDAR_TOP/'))
    corrupt_jpeg(osp.join(root, cam['filename']), restore_eoi=True)
    truncate(osp.join(root, sweep['filename']), 7)
    return root, cam, sweep


def _pkls(folder):
    return [n for n in os.listdir(folder) if n.endswith('.pkl')]


def _assert_names(err, root, rec, sensor):
    line = next(x for x in err.splitlines() if rec['filename'] in x)
    assert line.strip().startswith(f'{sensor} file {osp.join(root, rec["filename"])} ')
    assert f'sample token {rec["sample_token"]}, sample_data token {rec["token"]}' in line
    return line


def test_full_check_lists_both_bad_files_before_writing_anything(bad_raw_tree, capsys):
    root, cam, sweep = bad_raw_tree
    args = ['nuscenes', '--root-path', root, '--out-dir', root, '--version', 'v1.0-mini', '--no-dbinfos',
            '--check', 'full', '--workers', '2']
    assert create_data.main(args) == 2
    assert not _pkls(root)
    captured = capsys.readouterr()
    assert '2 of ' in captured.err and 'sensor files are bad' in captured.err
    jpeg_line = _assert_names(captured.err, root, cam, 'CAM_FRONT')
    assert 'cannot be decoded' in jpeg_line  # the strict decode, not the end-of-image marker
    sweep_line = _assert_names(captured.err, root, sweep, 'LIDAR_TOP sweep')
    assert 'truncated' in sweep_line
    assert 'no info file was written' in captured.err
    assert '[create_data] checked' in captured.err and '(decoded / read whole)' in captured.err


def test_check_only_writes_nothing_and_finds_them_too(bad_raw_tree, synthetic_nus, tmp_path, capsys):
    root, cam, sweep = bad_raw_tree
    assert create_data.main(['nuscenes', '--root-path', root, '--version', 'v1.0-mini', '--check-only',
                             '--quiet']) == 2
    err = capsys.readouterr().err
    _assert_names(err, root, cam, 'CAM_FRONT')
    _assert_names(err, root, sweep, 'LIDAR_TOP sweep')
    assert not _pkls(root)
    # the intact session set passes (its infos exist; nothing is rewritten)
    before = {n: os.path.getmtime(osp.join(synthetic_nus, n)) for n in _pkls(synthetic_nus)}
    assert create_data.main(['nuscenes', '--root-path', synthetic_nus, '--version', 'v1.0-mini', '--check-only',
                             '--quiet']) == 0
    assert {n: os.path.getmtime(osp.join(synthetic_nus, n)) for n in _pkls(synthetic_nus)} == before
    assert 'passed the full check' in capsys.readouterr().out


def test_cheap_check_lets_the_garbage_body_through_and_lists_the_truncated_sweep(bad_raw_tree, capsys):
    """Why --check full exists: the default check reads the header only."""
    root, cam, sweep = bad_raw_tree
    assert create_data.main(['nuscenes', '--root-path', root, '--version', 'v1.0-mini', '--check-only',
                             '--check', 'files', '--quiet']) == 2
    err = capsys.readouterr().err
    assert '1 of ' in err and cam['filename'] not in err
    _assert_names(err, root, sweep, 'LIDAR_TOP sweep')


def test_check_only_reads_the_gt_database(tmp_path, capsys):
    root = tmp_path / 'nus'
    (root / 'nuscenes_gt_database').mkdir(parents=True)
    np.zeros((4, 5), np.float32).tofile(root / 'nuscenes_gt_database' / '0_car_0.bin')
    np.zeros((4, 5), np.float32).tofile(root / 'nuscenes_gt_database' / '3_car_1.bin')
    truncate(str(root / 'nuscenes_gt_database' / '3_car_1.bin'), 3)
    entries = [dict(name='car', path=f'nuscenes_gt_database/{i}_car_{k}.bin', image_idx=i, gt_idx=k)
               for i, k in ((0, 0), (3, 1))]
    with open(root / 'nuscenes_dbinfos_train.pkl', 'wb') as f:
        pickle.dump(dict(car=entries), f)
    from clap_plugin.datasets.nuscenes_validation import NuScenesDataError, check_gt_database
    with pytest.raises(NuScenesDataError) as err:
        check_gt_database(str(root / 'nuscenes_dbinfos_train.pkl'))
    lines = str(err.value).splitlines()
    assert lines[0] == '1 of 2 GT-database files are bad:' and len(lines) == 2
    assert f'LIDAR_TOP GT-database object file {root}/nuscenes_gt_database/3_car_1.bin (car box 1 of training ' \
           'sample_idx 3' in lines[1] and 'truncated' in lines[1]

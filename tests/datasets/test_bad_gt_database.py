"""A GT-database object file that cannot be read is named (file, database entry, "LIDAR_TOP GT-database object")
when ObjectSample pastes it, or left out of the paste and counted with on_bad_sample=skip."""
import pickle

import numpy as np
import pytest

from clap_plugin.datasets.transforms import bad_sample
from clap_plugin.datasets.transforms.bad_sample import BadSampleError
from tests.datasets.corrupt import truncate

pytestmark = pytest.mark.usefixtures('mmdet3d_default_scope')


@pytest.fixture
def database(tmp_path):
    """Two car objects far apart (no collision): the second one's file truncated by 3 bytes."""
    folder = tmp_path / 'nuscenes_gt_database'
    folder.mkdir()
    entries = []
    for k, x in enumerate((10.0, -10.0)):
        path = f'nuscenes_gt_database/{k}_car_{k}.bin'
        np.random.default_rng(k).uniform(-0.5, 0.5, (8, 5)).astype(np.float32).tofile(tmp_path / path)
        entries.append(dict(name='car', path=path, image_idx=4 + k, gt_idx=k, num_points_in_gt=8, difficulty=0,
                            box3d_lidar=np.array([x, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0], np.float32), group_id=k))
    truncate(str(tmp_path / entries[1]['path']), 3)
    with open(tmp_path / 'nuscenes_dbinfos_train.pkl', 'wb') as f:
        pickle.dump(dict(car=entries), f)
    return tmp_path, tmp_path / entries[1]['path']


def _sampler(root, loader_type='CLAPLoadPointsFromFile', **loader_args):
    from mmdet3d.registry import TRANSFORMS
    return TRANSFORMS.build(dict(
        type='CLAPDataBaseSampler', data_root=str(root), info_path=str(root / 'nuscenes_dbinfos_train.pkl'),
        rate=1.0, prepare=dict(), classes=['car'], sample_groups=dict(car=2),
        points_loader=dict(type=loader_type, coord_type='LIDAR', load_dim=5, use_dim=[0, 1, 2, 3, 4],
                           **loader_args)))


@pytest.mark.parametrize('loader_type', ['CLAPLoadPointsFromFile', 'LoadPointsFromFile'])
def test_bad_database_file_is_named(database, loader_type):
    root, bad = database
    with pytest.raises(BadSampleError) as err:
        _sampler(root, loader_type).sample_all(np.zeros((0, 7), np.float32), np.zeros(0, np.int64))
    text = str(err.value)
    assert '\n' not in text
    assert text.startswith(f'bad sample: LIDAR_TOP GT-database object file {bad} (car box 1 of training sample_idx 5 '
                           f'in {root}/nuscenes_dbinfos_train.pkl): ')
    assert ('): truncated: ' if loader_type.startswith('CLAP') else '): ValueError: ') in text
    assert f'--root-path {root} ' in text and '--check-only' in text


def test_skip_leaves_the_bad_object_out_and_counts_it(database, monkeypatch):
    root, bad = database
    logged = []
    monkeypatch.setattr(bad_sample, 'print_log', lambda msg, **kwargs: logged.append(msg))
    before = bad_sample.skipped_bad_samples()
    out = _sampler(root, on_bad_sample='skip').sample_all(np.zeros((0, 7), np.float32), np.zeros(0, np.int64))
    assert bad_sample.skipped_bad_samples() == before + 1 and len(logged) == 1 and str(bad) in logged[0]
    assert out['gt_bboxes_3d'].shape[0] == 1 and out['points'].shape[0] == 8
    assert out['gt_bboxes_3d'][0, 0] == pytest.approx(10.0)
    assert list(out['group_ids']) == [0] and list(out['gt_labels_3d']) == [0]

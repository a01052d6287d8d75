"""A sensor file that cannot be read or decoded stops training with one line naming the file, the sample token
and the sensor (or, with on_bad_sample=skip, is skipped and counted), through the CPU-tiny fine-tune config's
own training dataset on a copy of the session's synthetic set."""
import copy
import os.path as osp
import pickle
import re
import shutil

import numpy as np
import pytest

from clap_plugin.datasets.transforms import bad_sample
from clap_plugin.datasets.transforms.bad_sample import BadSampleError
from tests.datasets.corrupt import copy_tree, corrupt_jpeg, truncate
from tests.helpers.paths import REPO

LIDAR_CAM_TINY = osp.join(REPO, 'configs', 'bevfusion_lidar-cam_finetune_nus_cpu-tiny.py')


@pytest.fixture(scope='module')
def bad_tree(synthetic_nus, tmp_path_factory):
    """The synthetic set with, in the training split (3 samples): sample 0's CAM_FRONT JPEG with its header kept
    and its body random (same size), and sample 2's newest LiDAR sweep (read by sample 2 only) truncated by 7
    bytes; sample 1 is intact. Also a CAM_BACK JPEG of sample 1, copied beside it, with only 20 bytes kept and
    the end-of-image marker put back: OpenCV returns no image for it (the issue's cvtColor failure)."""
    root = copy_tree(synthetic_nus, str(tmp_path_factory.mktemp('badsamples') / 'nuscenes'))
    with open(osp.join(root, 'nuscenes_infos_train.pkl'), 'rb') as f:
        infos = pickle.load(f)['data_list']
    assert len(infos) == 3

    def local(path, folder):
        return osp.join(root, folder, osp.basename(path))

    jpeg = local(infos[0]['images']['CAM_FRONT']['img_path'], 'samples/CAM_FRONT')
    corrupt_jpeg(jpeg)
    sweep = infos[2]['lidar_sweeps'][0]
    sweep_path = local(sweep['lidar_points']['lidar_path'], 'sweeps/LIDAR_TOP')
    assert not any(s['sample_data_token'] == sweep['sample_data_token'] for s in infos[1]['lidar_sweeps'])
    truncate(sweep_path, 7)
    back = infos[1]['images']['CAM_BACK']
    undecodable = osp.join(root, 'samples', 'CAM_BACK', 'undecodable.jpg')
    shutil.copyfile(local(back['img_path'], 'samples/CAM_BACK'), undecodable)
    corrupt_jpeg(undecodable, keep=20, restore_eoi=True)
    return dict(root=root, tokens=[i['token'] for i in infos], jpeg=jpeg,
                jpeg_sd=infos[0]['images']['CAM_FRONT']['sample_data_token'], sweep=sweep_path,
                sweep_sd=sweep['sample_data_token'], undecodable=undecodable, back=dict(back, img_path=undecodable))


def _train_dataset(root, options=None):
    from mmdet3d.registry import DATASETS

    from clap_plugin.apis import load_config, merge_cfg_options
    cfg = merge_cfg_options(load_config(LIDAR_CAM_TINY), dict(data_root=root + '/', **(options or {})))
    return DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))


def _index_of(dataset, token):
    return next(i for i in range(len(dataset)) if dataset.get_data_info(i)['token'] == token)


def _one_line(err):
    text = str(err.value)
    assert '\n' not in text and text.startswith('bad sample: ')
    assert '--check-only' in text and 'python tools/create_data.py nuscenes' in text
    return text


def _stopping_message(bad_tree, sample: int) -> str:
    """The one-line message with which reading train sample ``bad_tree['tokens'][sample]`` stops."""
    dataset = _train_dataset(bad_tree['root'])
    with pytest.raises(BadSampleError) as err:
        dataset[_index_of(dataset, bad_tree['tokens'][sample])]
    return _one_line(err)


def test_corrupt_jpeg_body_stops_training_naming_file_token_and_camera(bad_tree):
    text = _stopping_message(bad_tree, 0)
    assert f'CAM_FRONT file {bad_tree["jpeg"]} ' in text
    assert f'sample token {bad_tree["tokens"][0]}' in text and bad_tree['jpeg_sd'] in text
    assert 'end-of-image marker' in text
    assert f'--root-path {bad_tree["root"]} ' in text and '--version v1.0-mini' in text


def test_truncated_lidar_sweep_stops_training_naming_file_token_and_sweep(bad_tree):
    text = _stopping_message(bad_tree, 2)
    assert f'LIDAR_TOP sweep file {bad_tree["sweep"]} ' in text
    assert f'sample token {bad_tree["tokens"][2]}, sample_data token {bad_tree["sweep_sd"]}' in text
    assert 'truncated' in text and 'not a multiple of 20' in text


def test_image_opencv_cannot_decode_is_named_instead_of_cvtcolor_assertion(bad_tree):
    from clap_plugin.datasets.transforms import CLAPLoadMultiViewImageFromFiles
    loader = CLAPLoadMultiViewImageFromFiles(to_float32=True, num_views=1)
    with pytest.raises(BadSampleError) as err:
        loader(dict(token=bad_tree['tokens'][1], images=dict(CAM_BACK=copy.deepcopy(bad_tree['back']))))
    text = _one_line(err)
    assert f'CAM_BACK file {bad_tree["undecodable"]} (sample token {bad_tree["tokens"][1]}' in text
    assert 'cannot be decoded' in text and 'cvtColor' in text  # OpenCV's own error, on the same line


def test_truncated_or_non_finite_keyframe_is_named(tmp_path):
    from clap_plugin.datasets.transforms import CLAPLoadPointsFromFile
    path = str(tmp_path / 'samples' / 'LIDAR_TOP' / 'x.pcd.bin')
    (tmp_path / 'samples' / 'LIDAR_TOP').mkdir(parents=True)
    np.arange(50, dtype=np.float32).tofile(path)
    truncate(path, 4)
    loader = CLAPLoadPointsFromFile(coord_type='LIDAR', load_dim=5, use_dim=5)
    with pytest.raises(BadSampleError, match=r'LIDAR_TOP file .*x\.pcd\.bin \(sample token abc\): truncated'):
        loader(dict(lidar_points=dict(lidar_path=path), token='abc'))
    np.full(10, np.nan, dtype=np.float32).tofile(path)
    with pytest.raises(BadSampleError, match='not finite'):
        loader(dict(lidar_points=dict(lidar_path=path), token='abc'))


def test_skip_mode_skips_and_counts(bad_tree, monkeypatch):
    logged = []
    monkeypatch.setattr(bad_sample, 'print_log', lambda msg, **kwargs: logged.append(msg))
    dataset = _train_dataset(bad_tree['root'], dict(on_bad_sample='skip'))
    before = bad_sample.skipped_bad_samples()
    np.random.seed(0)
    sample = dataset[_index_of(dataset, bad_tree['tokens'][0])]  # skipped: mmengine draws another sample
    assert sample['data_samples'].metainfo['lidar_path']
    skipped = bad_sample.skipped_bad_samples() - before
    assert skipped >= 1 and len(logged) == skipped
    assert bad_tree['jpeg'] in logged[0] and '\n' not in logged[0]
    assert re.search(rf' -- skipped \(on_bad_sample=skip\): skip {before + 1} in this process, \d+ distinct bad '
                     'files$', logged[0])
    # the sample that came back is the good one
    assert sample['data_samples'].metainfo['sample_idx'] == dataset.get_data_info(
        _index_of(dataset, bad_tree['tokens'][1]))['sample_idx']


def test_on_bad_sample_option_reaches_every_training_loader_and_is_checked():
    from clap_plugin.apis import load_config, merge_cfg_options
    lidar_tiny = osp.join(REPO, 'configs', 'bevfusion_lidar_finetune_nus_cpu-tiny.py')
    cfg = merge_cfg_options(load_config(lidar_tiny), dict(on_bad_sample='skip'))
    steps = {s['type']: s for s in cfg.train_dataloader.dataset.dataset.pipeline}
    assert steps['CLAPLoadPointsFromFile']['on_bad_sample'] == 'skip'
    assert steps['CLAPLoadPointsFromMultiSweeps']['on_bad_sample'] == 'skip'
    assert steps['ObjectSample']['db_sampler']['points_loader']['on_bad_sample'] == 'skip'
    # evaluation keeps stopping at a bad sample
    assert all('on_bad_sample' not in s for s in cfg.val_dataloader.dataset.pipeline)
    with pytest.raises(SystemExit, match="on_bad_sample='maybe'"):
        merge_cfg_options(load_config(lidar_tiny), dict(on_bad_sample='maybe'))
    pretrain = osp.join(REPO, 'configs', 'clap_pretrain_nus_cpu-tiny.py')
    with pytest.raises(SystemExit, match='test_mode=True'):
        merge_cfg_options(load_config(pretrain), dict(on_bad_sample='skip'))
    assert merge_cfg_options(load_config(pretrain), dict(on_bad_sample='raise'))
    with pytest.raises(ValueError, match="on_bad_sample must be 'raise' or 'skip'"):
        from clap_plugin.datasets.transforms import CLAPLoadPointsFromMultiSweeps
        CLAPLoadPointsFromMultiSweeps(on_bad_sample='ignore')


def test_every_config_pipeline_uses_the_checked_loaders():
    """No pipeline of the package or its projects reads sensor files through a loader that does not name bad
    files (mmdet3d's LoadPointsFromFile / LoadPointsFromMultiSweeps / LoadMultiViewImageFromFiles)."""
    import glob

    from mmengine.config import Config
    unchecked = ('LoadPointsFromFile', 'LoadPointsFromMultiSweeps', 'LoadMultiViewImageFromFiles')

    def types(node):
        if isinstance(node, dict):
            yield node.get('type')
            for v in node.values():
                yield from types(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                yield from types(v)

    configs = [c for c in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
               + glob.glob(osp.join(REPO, 'projects', '*', 'configs', '*.py')) if '_base_' not in c]
    assert len(configs) > 10
    for path in configs:
        found = set(types(Config.fromfile(path).to_dict()))
        assert not found & set(unchecked), (path, found & set(unchecked))


def test_training_run_stops_at_the_bad_sample_with_its_line(bad_tree, tmp_path):
    """tools/train.py's code path: any batch of 2 of the 3 training samples holds a bad one. One loader worker,
    as in the full-size configs: the error comes back wrapped in torch's worker traceback."""
    from clap_plugin.apis import train
    with pytest.raises(SystemExit) as err:  # train.main turns it into one 'error: ...' line, no traceback
        train.main([LIDAR_CAM_TINY, '--work-dir', str(tmp_path), '--cfg-options', f'data_root={bad_tree["root"]}/',
                    'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None', 'train_dataloader.num_workers=1'])
    assert isinstance(err.value.__cause__, BadSampleError)
    text = str(err.value.code)
    assert text.startswith('error: bad sample: ') and '\n' not in text
    assert (f'CAM_FRONT file {bad_tree["jpeg"]} ' in text or f'LIDAR_TOP sweep file {bad_tree["sweep"]} ' in text)
    assert any(f'sample token {t}' in text for t in bad_tree['tokens'])

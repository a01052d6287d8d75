"""Bad input gets a clear error naming the culprit, and nothing partial is written."""
import json
import os
import os.path as osp
import shutil

import pytest

from clap_plugin.datasets.nuscenes_converter import create_nuscenes_infos
from clap_plugin.datasets.nuscenes_validation import NuScenesDataError
from clap_plugin.synthetic import GeneratorConfig, SyntheticDataError, generate


@pytest.fixture(scope='module')
def small_tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('bad') / 'clean')
    generate(GeneratorConfig(root=root, num_scenes=2, samples_per_scene=2, seed=1, sweeps=1,
                             image_size=(160, 90)), progress=False)
    return root


@pytest.fixture
def tree(small_tree, tmp_path):
    dst = str(tmp_path / 'nus')
    shutil.copytree(small_tree, dst)
    return dst


def _no_infos(out_dir):
    return not osp.exists(out_dir) or not [f for f in os.listdir(out_dir) if f.endswith('.pkl')]


def test_clean_tree_converts(tree, tmp_path):
    out = str(tmp_path / 'out')
    paths = create_nuscenes_infos(tree, out, version='v1.0-mini', max_sweeps=1)
    assert sorted(osp.basename(p) for p in paths) == ['nuscenes_infos_train.pkl', 'nuscenes_infos_val.pkl']
    assert sorted(os.listdir(out)) == ['nuscenes_infos_train.pkl', 'nuscenes_infos_val.pkl']  # no temp leftovers


def test_missing_root(tmp_path):
    out = str(tmp_path / 'out')
    with pytest.raises(NuScenesDataError, match='does not exist'):
        create_nuscenes_infos(str(tmp_path / 'nope'), out, version='v1.0-mini')
    assert _no_infos(out)


def test_unknown_version(tree, tmp_path):
    out = str(tmp_path / 'out')
    with pytest.raises(NuScenesDataError, match="unknown nuScenes version 'v2.0-mini'"):
        create_nuscenes_infos(tree, out, version='v2.0-mini')
    with pytest.raises(NuScenesDataError, match='v1.0-trainval'):  # known version, folder absent
        create_nuscenes_infos(tree, out, version='v1.0-trainval')
    assert _no_infos(out)


def test_truncated_lidar_file(tree, tmp_path):
    with open(osp.join(tree, 'v1.0-mini', 'sample_data.json')) as f:
        rec = next(r for r in json.load(f) if r['filename'].endswith('.pcd.bin'))
    path = osp.join(tree, rec['filename'])
    size = osp.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(size - 7)
    out = str(tmp_path / 'out')
    with pytest.raises(NuScenesDataError, match='truncated') as err:
        create_nuscenes_infos(tree, out, version='v1.0-mini')
    assert osp.basename(path) in str(err.value)
    assert _no_infos(out)


def test_missing_image(tree, tmp_path):
    with open(osp.join(tree, 'v1.0-mini', 'sample_data.json')) as f:
        rec = next(r for r in json.load(f) if r['filename'].endswith('.jpg'))
    os.remove(osp.join(tree, rec['filename']))
    out = str(tmp_path / 'out')
    with pytest.raises(NuScenesDataError, match='is missing') as err:
        create_nuscenes_infos(tree, out, version='v1.0-mini')
    assert osp.basename(rec['filename']) in str(err.value)
    assert _no_infos(out)


def test_dangling_token(tree, tmp_path):
    path = osp.join(tree, 'v1.0-mini', 'sample_annotation.json')
    with open(path) as f:
        anns = json.load(f)
    anns[3]['instance_token'] = 'deadbeef' * 4
    with open(path, 'w') as f:
        json.dump(anns, f)
    out = str(tmp_path / 'out')
    with pytest.raises(NuScenesDataError, match="instance_token='deadbeefdeadbeefdeadbeefdeadbeef'") as err:
        create_nuscenes_infos(tree, out, version='v1.0-mini')
    assert 'sample_annotation.json' in str(err.value)
    assert _no_infos(out)


def test_generator_rejects_bad_arguments(tmp_path):
    with pytest.raises(SyntheticDataError, match='unknown version'):
        generate(GeneratorConfig(root=str(tmp_path / 'a'), version='v9'), progress=False)
    with pytest.raises(SyntheticDataError, match='--scenes'):
        generate(GeneratorConfig(root=str(tmp_path / 'a'), num_scenes=11), progress=False)
    with pytest.raises(SyntheticDataError, match='--samples-per-scene'):
        generate(GeneratorConfig(root=str(tmp_path / 'a'), samples_per_scene=1), progress=False)
    assert not osp.exists(tmp_path / 'a')
    (tmp_path / 'full').mkdir()
    (tmp_path / 'full' / 'keep.txt').write_text('x')
    with pytest.raises(SyntheticDataError, match='not empty'):
        generate(GeneratorConfig(root=str(tmp_path / 'full')), progress=False)
    assert os.listdir(tmp_path / 'full') == ['keep.txt']


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    from clap_plugin.synthetic import generator as gen_mod

    def boom(*args, **kwargs):
        raise RuntimeError('disk full')
    monkeypatch.setattr(gen_mod, '_write_map_mask', boom)
    with pytest.raises(RuntimeError, match='disk full'):
        generate(GeneratorConfig(root=str(tmp_path / 'x'), num_scenes=1, samples_per_scene=2, sweeps=0,
                                 image_size=(64, 36)), progress=False)
    assert os.listdir(tmp_path) == []


def test_cli_reports_errors(tmp_path, capsys):
    import runpy
    import sys
    script = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'create_data.py')
    argv = sys.argv
    sys.argv = ['create_data.py', 'nuscenes', '--root-path', str(tmp_path / 'nope'), '--out-dir', str(tmp_path),
                '--version', 'v1.0-mini']
    try:
        with pytest.raises(SystemExit) as exc:
            runpy.run_path(script, run_name='__main__')
    finally:
        sys.argv = argv
    assert exc.value.code == 2
    assert 'does not exist' in capsys.readouterr().err

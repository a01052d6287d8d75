"""nuScenes -> mmdet3d 1.4 v2 info files, through mmdet3d's own converter code.

mmdet3d ships its dataset converters under ``mmdet3d/.mim/tools/dataset_converters``. They are loaded from
there and called with an already-open ``NuScenes`` for the given root (the v2 update step otherwise opens
``./data/nuscenes``). Outputs are written to a temporary folder and moved into ``out_dir`` when complete.
"""
import importlib.util
import os
import os.path as osp
import shutil
import tempfile
from types import ModuleType
from typing import Dict, List

import mmdet3d

from .nuscenes_validation import NuScenesDataError, validate_nuscenes


def load_mmdet3d_converter(name: str) -> ModuleType:
    """Import ``tools/dataset_converters/<name>.py`` as shipped inside the installed mmdet3d package."""
    path = osp.join(osp.dirname(mmdet3d.__file__), '.mim', 'tools', 'dataset_converters', f'{name}.py')
    if not osp.isfile(path):
        raise ImportError(f'mmdet3d converter {path} not found; is mmdet3d 1.4 installed from its wheel?')
    spec = importlib.util.spec_from_file_location(f'clap_plugin._mmdet3d_converters.{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _split_scene_names(version: str) -> Dict[str, List[str]]:
    from nuscenes.utils import splits
    if version == 'v1.0-trainval':
        return dict(train=splits.train, val=splits.val)
    if version == 'v1.0-mini':
        return dict(train=splits.mini_train, val=splits.mini_val)
    return dict(test=splits.test)


def create_nuscenes_infos(root_path: str, out_dir: str, info_prefix: str = 'nuscenes',
                          version: str = 'v1.0-trainval', max_sweeps: int = 10) -> List[str]:
    """Write ``{info_prefix}_infos_{train,val}.pkl`` (or ``_test``) in mmdet3d's v2 format; returns their paths."""
    from nuscenes.nuscenes import NuScenes

    root_path = osp.abspath(root_path)
    validate_nuscenes(root_path, version)
    if max_sweeps < 0:
        raise NuScenesDataError(f'max_sweeps must be >= 0, got {max_sweeps}')
    converter = load_mmdet3d_converter('nuscenes_converter')
    updater = load_mmdet3d_converter('update_infos_to_v2')
    nusc = NuScenes(version=version, dataroot=root_path, verbose=False)
    updater.NuScenes = lambda *args, **kwargs: nusc  # the update step reuses this root, not ./data/nuscenes

    available = converter.get_available_scenes(nusc)
    name_to_token = {s['name']: s['token'] for s in available}
    split_names = _split_scene_names(version)
    test = 'test' in split_names
    first = set(name_to_token[n] for n in split_names['test' if test else 'train'] if n in name_to_token)
    second = set() if test else set(name_to_token[n] for n in split_names['val'] if n in name_to_token)
    if not first and not second:
        raise NuScenesDataError(f'no scene of {root_path}/{version} belongs to the official {version} splits')
    infos_a, infos_b = converter._fill_trainval_infos(nusc, first, second, test, max_sweeps=max_sweeps)

    os.makedirs(out_dir, exist_ok=True)
    import mmengine
    outputs = []
    with tempfile.TemporaryDirectory(dir=out_dir, prefix='.infos-tmp-') as tmp:
        v1_dir = osp.join(tmp, 'v1')
        os.makedirs(v1_dir)
        parts = [('test', infos_a)] if test else [('train', infos_a), ('val', infos_b)]
        for split, infos in parts:
            name = f'{info_prefix}_infos_{split}.pkl'
            mmengine.dump(dict(infos=infos, metadata=dict(version=version)), osp.join(v1_dir, name))
            updater.update_nuscenes_infos(pkl_path=osp.join(v1_dir, name), out_dir=tmp)
            outputs.append(name)
        for name in outputs:  # all written: move into place
            os.replace(osp.join(tmp, name), osp.join(out_dir, name))
        shutil.rmtree(v1_dir, ignore_errors=True)
    return [osp.join(out_dir, n) for n in outputs]

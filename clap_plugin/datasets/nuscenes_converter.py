"""nuScenes -> mmdet3d 1.4 v2 info files and GT-sampling database, through mmdet3d's own converter code.

mmdet3d ships its dataset converters under ``mmdet3d/.mim/tools/dataset_converters``. They are loaded from
there and called with an already-open ``NuScenes`` for the given root (the v2 update step otherwise opens
``./data/nuscenes``). With ``workers > 1`` the samples are converted by forked processes, in chunks, and the
results joined in the original order (the same infos as one process). The GT-sampling database is made by
mmdet3d's ``create_groundtruth_database``. Outputs are written to temporary names and moved into ``out_dir``
when complete.
"""
import importlib.util
import multiprocessing
import os
import os.path as osp
import shutil
import sys
import tempfile
from types import ModuleType
from typing import Dict, List, Optional, Tuple

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


# state of the forked conversion workers (set before the fork, read by _convert_chunk)
_WORKER: dict = {}


def _convert_chunk(bounds: Tuple[int, int]):
    """Run mmdet3d's sample loop over ``nusc.sample[lo:hi]`` only. The converter iterates
    ``mmengine.track_iter_progress(nusc.sample)``; the table itself must stay whole (``nusc.get`` indexes it),
    so the chunk is cut where the loop reads it, in this forked process only."""
    import mmengine
    w = _WORKER
    samples = w['nusc'].sample
    lo, hi = bounds
    mmengine.track_iter_progress = lambda items, *args, **kwargs: items[lo:hi] if items is samples else items
    return w['converter']._fill_trainval_infos(w['nusc'], w['first'], w['second'], w['test'],
                                                max_sweeps=w['max_sweeps'])


def fill_infos(converter: ModuleType, nusc, first: set, second: set, test: bool, max_sweeps: int,
               workers: int = 1, progress: bool = True, chunk: Optional[int] = None):
    """mmdet3d's ``_fill_trainval_infos`` over all samples, by ``workers`` forked processes in chunks."""
    samples = list(nusc.sample)
    if workers <= 1 or len(samples) < 2:
        return converter._fill_trainval_infos(nusc, first, second, test, max_sweeps=max_sweeps)
    chunk = chunk or max(1, min(500, -(-len(samples) // (4 * workers))))
    bounds = [(i, min(i + chunk, len(samples))) for i in range(0, len(samples), chunk)]
    _WORKER.update(nusc=nusc, converter=converter, first=first, second=second, test=test,
                   max_sweeps=max_sweeps)
    infos_a, infos_b, done = [], [], 0
    try:
        with multiprocessing.get_context('fork').Pool(workers) as pool:
            for a, b in pool.imap(_convert_chunk, bounds):  # in order: the same lists as one process
                infos_a += a
                infos_b += b
                done += len(a) + len(b)
                if progress:
                    print(f'[create_data] converted {done}/{len(samples)} samples', file=sys.stderr, flush=True)
    finally:
        _WORKER.clear()
    return infos_a, infos_b


def create_nuscenes_infos(root_path: str, out_dir: str, info_prefix: str = 'nuscenes',
                          version: str = 'v1.0-trainval', max_sweeps: int = 10, workers: int = 1,
                          progress: bool = False) -> List[str]:
    """Write ``{info_prefix}_infos_{train,val}.pkl`` (or ``_test``) in mmdet3d's v2 format; returns their paths.

    Only the files the converter reads are checked beforehand: keyframes of LIDAR_TOP and the cameras, and
    up to ``max_sweeps`` LiDAR sweeps per keyframe (camera sweeps and radar may be absent).
    """
    from nuscenes.nuscenes import NuScenes

    root_path = osp.abspath(root_path)
    if max_sweeps < 0:
        raise NuScenesDataError(f'max_sweeps must be >= 0, got {max_sweeps}')
    validate_nuscenes(root_path, version, max_sweeps=max_sweeps, workers=workers, progress=progress)
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
    infos_a, infos_b = fill_infos(converter, nusc, first, second, test, max_sweeps, workers=workers,
                                  progress=progress)

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


def create_nuscenes_dbinfos(root_path: str, train_info: str, out_dir: str, info_prefix: str = 'nuscenes'
                            ) -> Tuple[str, str, Dict[str, int]]:
    """mmdet3d's GT-sampling database for ``ObjectSample``: ``{info_prefix}_gt_database/`` (each box's
    points, relative to the box centre) and ``{info_prefix}_dbinfos_train.pkl`` in ``out_dir``.

    Made by mmdet3d's ``create_groundtruth_database`` from the training infos (the points of the keyframe and
    its LiDAR sweeps, as mmdet3d does). The database paths in the dbinfos are relative to ``out_dir``, so the
    config's ``db_sampler.data_root`` is the folder the infos are in. Returns (dbinfos path, database folder,
    boxes per class).
    """
    import pickle
    root_path, out_dir, train_info = osp.abspath(root_path), osp.abspath(out_dir), osp.abspath(train_info)
    if not osp.isfile(train_info):
        raise NuScenesDataError(f'training info file {train_info} does not exist; make the infos first')
    gt_db = load_mmdet3d_converter('create_gt_database')
    db_dir = osp.join(out_dir, f'{info_prefix}_gt_database')
    db_info = osp.join(out_dir, f'{info_prefix}_dbinfos_train.pkl')
    tmp_dir = tempfile.mkdtemp(dir=out_dir, prefix=f'.{info_prefix}_gt_database.tmp-')
    tmp_info = osp.join(tmp_dir, 'dbinfos.pkl')
    from mmdet3d.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)  # the database is read through mmdet3d's pipeline
    try:
        with DefaultScope.overwrite_default_scope('mmdet3d'):
            gt_db.create_groundtruth_database('NuScenesDataset', root_path, info_prefix, train_info,
                                              database_save_path=osp.join(tmp_dir, 'db'),
                                              db_info_save_path=tmp_info)
        with open(tmp_info, 'rb') as f:
            counts = {k: len(v) for k, v in pickle.load(f).items()}
        old = None
        if osp.exists(db_dir):
            old = tempfile.mkdtemp(dir=out_dir, prefix=f'.{info_prefix}_gt_database.old-')
            os.replace(db_dir, osp.join(old, 'db'))
        os.replace(osp.join(tmp_dir, 'db'), db_dir)
        os.replace(tmp_info, db_info)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return db_info, db_dir, counts

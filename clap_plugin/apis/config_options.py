"""Reading a config and applying ``--cfg-options`` for tools/train.py and tools/test.py: the top-level
convenience keys ``data_root`` (moves every path under the old root), ``nus_version``, ``label_fraction`` /
``label_fraction_seed`` and ``on_bad_sample`` reach the places that use them; the work dir and the
checkpoint-load report hook."""
import logging
import os.path as osp
from typing import Any, Optional

from mmengine.config import Config
from mmengine.logging import print_log


def import_plugins() -> None:
    """Register mmdet3d's modules and clap_plugin's (which also lets torch>=2.6 load mmengine checkpoints)."""
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import clap_plugin  # noqa: F401


def load_config(path: str) -> Config:
    """Read a config file; exit with a clear message when it is missing or unreadable."""
    if not osp.isfile(path):
        raise SystemExit(f'error: config file {path!r} does not exist')
    try:
        return Config.fromfile(path)
    except Exception as exc:  # syntax errors, missing _base_ files, ...
        raise SystemExit(f'error: cannot read config {path!r}: {type(exc).__name__}: {exc}') from exc


def _rewrite_strings(node: Any, old: str, new: str) -> Any:
    """Replace ``old`` as a string prefix by ``new`` in every string of a nested dict / list."""
    if isinstance(node, str):
        return new + node[len(old):] if node.startswith(old) else node
    if isinstance(node, dict):
        for key in list(node.keys()):
            node[key] = _rewrite_strings(node[key], old, new)
        return node
    if isinstance(node, (list, tuple)):
        items = [_rewrite_strings(v, old, new) for v in node]
        return type(node)(items) if isinstance(node, tuple) else items
    return node


def _set_in_wrappers(node: Any, type_name: str, values: dict) -> int:
    """Set ``values`` in every dict of ``type=type_name`` in a nested dict / list; returns how many."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') == type_name:
            node.update(values)
            count += 1
        for value in node.values():
            count += _set_in_wrappers(value, type_name, values)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _set_in_wrappers(value, type_name, values)
    return count


def _set_dataset_version(node: Any, version: str) -> int:
    """Set ``metainfo.version`` of every dataset config (a dict with ``ann_file`` and ``metainfo``)."""
    count = 0
    if isinstance(node, dict):
        if 'ann_file' in node and isinstance(node.get('metainfo', None), dict):
            node['metainfo']['version'] = version
            count += 1
        for value in node.values():
            count += _set_dataset_version(value, version)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _set_dataset_version(value, version)
    return count


_LOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# the loaders with an ``on_bad_sample`` argument (clap_plugin.datasets.transforms.bad_sample)
BAD_SAMPLE_LOADERS = ('CLAPLoadMultiViewImageFromFiles', 'CLAPLoadPointsFromFile', 'CLAPLoadPointsFromMultiSweeps')


def _test_mode_datasets(node: Any) -> int:
    """How many dataset configs (dicts with a ``pipeline``) in a nested dict / list have ``test_mode=True``."""
    count = 0
    if isinstance(node, dict):
        if 'pipeline' in node and node.get('test_mode', False):
            count += 1
        for value in node.values():
            count += _test_mode_datasets(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _test_mode_datasets(value)
    return count


def _set_on_bad_sample(cfg: Config, value: str) -> None:
    """``on_bad_sample=value`` in every loader of the training pipelines (GT-database loader included).

    Validation and test pipelines keep 'raise': a skipped sample would change the evaluated set, and mmengine
    refuses a skipped (None) sample in test mode. 'skip' is refused for a training dataset built with
    ``test_mode=True`` (the label-free pre-training configs) for the same reason."""
    if value not in ('raise', 'skip'):
        raise SystemExit(f"error: --cfg-options on_bad_sample={value!r}: expected 'raise' (stop at a bad sample, "
                         "the default) or 'skip' (skip it in training and count it)")
    if cfg.get('train_dataloader', None) is None:
        raise SystemExit('error: --cfg-options on_bad_sample given, but the config has no train_dataloader')
    section = cfg.train_dataloader.to_dict()
    if value == 'skip' and _test_mode_datasets(section):
        raise SystemExit('error: --cfg-options on_bad_sample=skip: the training dataset is built with '
                         'test_mode=True (label-free pre-training), where mmengine cannot draw another sample in '
                         'place of a skipped one; find the bad files with tools/create_data.py ... --check-only '
                         'and replace or remove them')
    found = sum(_set_in_wrappers(section, name, dict(on_bad_sample=value)) for name in BAD_SAMPLE_LOADERS)
    if not found:
        raise SystemExit(f'error: --cfg-options on_bad_sample given, but no training pipeline of the config uses '
                         f'one of {", ".join(BAD_SAMPLE_LOADERS)}')
    cfg.train_dataloader = section


def _has_evaluator(cfg: Config) -> bool:
    return any(cfg.get(k, None) is not None for k in ('val_evaluator', 'test_evaluator'))


def merge_cfg_options(cfg: Config, options: Optional[dict]) -> Config:
    """``cfg.merge_from_dict(options)`` plus the propagation of the top-level convenience keys.

    ``data_root``: every string starting with the config's former data root (dataset roots, the
    evaluator's ``ann_file`` / ``data_root``, ...) is moved to the new root. ``label_fraction`` /
    ``label_fraction_seed``: set in every ``LabelFractionDataset`` of the config (the config must have one).
    ``nus_version``: the nuScenes version (``v1.0-mini`` / ``v1.0-trainval``) in every dataset's metainfo,
    which selects NuScenesMetric's evaluation split. ``on_bad_sample``: 'raise' (default) or 'skip', set in
    every loader of the training pipelines (see :func:`_set_on_bad_sample`).
    """
    if not options:
        return cfg
    old_root = cfg.get('data_root', None)
    cfg.merge_from_dict(options)
    if 'data_root' in options:
        new_root = str(options['data_root'])
        if not new_root:
            raise SystemExit('error: --cfg-options data_root is empty')
        if old_root is None:
            raise SystemExit(f'error: --cfg-options data_root={new_root!r}, but the config has no '
                             'top-level data_root to replace')
        if old_root.endswith('/') and not new_root.endswith('/'):
            new_root += '/'
        body = {k: v for k, v in cfg._cfg_dict.items() if k != 'data_root'}
        _rewrite_strings(body, old_root, new_root)
        for key, value in body.items():
            cfg[key] = value
        cfg['data_root'] = new_root
    if 'nus_version' in options:
        version = str(options['nus_version'])
        if version not in ('v1.0-mini', 'v1.0-trainval', 'v1.0-test'):
            raise SystemExit(f'error: --cfg-options nus_version={version!r}: expected v1.0-mini, '
                             'v1.0-trainval or v1.0-test')
        found = 0
        for key in _LOADER_KEYS:
            if cfg.get(key, None) is not None:
                section = cfg[key].to_dict()
                found += _set_dataset_version(section, version)
                cfg[key] = section
        if not found:
            if not _has_evaluator(cfg):
                print_log(f'note: --cfg-options nus_version={version} changes nothing here: it selects the split '
                          'NuScenesMetric evaluates, and this config has no evaluator (a pre-training config)',
                          logger='current', level=logging.WARNING)
            else:
                raise SystemExit('error: --cfg-options nus_version given, but no dataset of the config has a '
                                 'metainfo dict')
    fraction_keys = {'label_fraction': 'fraction', 'label_fraction_seed': 'seed'}
    updates = {fraction_keys[k]: options[k] for k in fraction_keys if k in options}
    if updates:
        found = 0
        for key in _LOADER_KEYS:
            if cfg.get(key, None) is not None:
                section = cfg[key].to_dict()
                found += _set_in_wrappers(section, 'LabelFractionDataset', updates)
                cfg[key] = section
        if not found:
            raise SystemExit(f'error: --cfg-options {sorted(k for k in fraction_keys if k in options)} '
                             'given, but the config has no LabelFractionDataset')
    if 'on_bad_sample' in options:
        _set_on_bad_sample(cfg, str(options['on_bad_sample']))
    return cfg


def default_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> str:
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir', None) is not None:
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def add_load_report_hook(cfg: Config) -> None:
    """Add ``CheckpointLoadReportHook`` (every tensor of the loaded file checked against the model)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(isinstance(h, dict) and h.get('type') == 'CheckpointLoadReportHook' for h in hooks):
        hooks.append(dict(type='CheckpointLoadReportHook'))
    cfg.custom_hooks = hooks

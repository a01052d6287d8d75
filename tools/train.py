"""Train a detector or a pre-training model from a config with mmengine's Runner (mmdet3d's CLI).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--auto-scale-lr]
                                 [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

Single process on CPU or one GPU; several processes through ``tools/dist_train.sh`` (torchrun,
``--launcher pytorch``). Without CUDA a distributed run uses the ``gloo`` backend and an unwrapped-device
``DistributedDataParallel``. ``--cfg-options data_root=DIR`` moves every path under the config's data root
(dataset roots, the evaluator's info file); ``label_fraction=F`` / ``label_fraction_seed=S`` reach the
``LabelFractionDataset`` wrappers.
"""
import argparse
import logging
import os
import os.path as osp
import subprocess
import sys
from datetime import timedelta
from typing import Any, List, Optional, Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model with an mmdet3d / clap_plugin config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='automatic mixed precision (AmpOptimWrapper, dynamic loss scale)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the ratio of the real to the base batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT; without a path, from the latest checkpoint of the work dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, "key=value" (e.g. data_root=/data/nus/ '
                        'train_cfg.max_iters=10 load_from=enc.pth)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


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


def _has_evaluator(cfg: Config) -> bool:
    return any(cfg.get(k, None) is not None for k in ('val_evaluator', 'test_evaluator'))


def merge_cfg_options(cfg: Config, options: Optional[dict]) -> Config:
    """``cfg.merge_from_dict(options)`` plus the propagation of the top-level convenience keys.

    ``data_root``: every string starting with the config's former data root (dataset roots, the
    evaluator's ``ann_file`` / ``data_root``, ...) is moved to the new root. ``label_fraction`` /
    ``label_fraction_seed``: set in every ``LabelFractionDataset`` of the config (the config must have one).
    ``nus_version``: the nuScenes version (``v1.0-mini`` / ``v1.0-trainval``) in every dataset's metainfo,
    which selects NuScenesMetric's evaluation split.
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
    return cfg


def _data_file_refs(node: Any, where: str, root: Optional[str] = None):
    """(config path, file, data root, nuScenes version) of every info file a dataset / evaluator / GT sampler
    config reads: ``ann_file`` (relative to the dataset's ``data_root``, as mmengine's BaseDataset resolves
    it) and ``db_sampler.info_path``."""
    if isinstance(node, dict):
        root = node.get('data_root', root)
        version = (node.get('metainfo') or {}).get('version') if isinstance(node.get('metainfo'), dict) else None
        if isinstance(node.get('ann_file'), str) and node['ann_file']:
            path = node['ann_file']
            if 'type' in node and 'Metric' not in str(node.get('type')) and root and not osp.isabs(path):
                path = osp.join(root, path)  # a dataset; a metric reads ann_file as given
            yield f'{where}.ann_file', path, root, version
        if isinstance(node.get('info_path'), str):
            yield f'{where}.info_path', node['info_path'], root, version
        for key, value in node.items():
            yield from _data_file_refs(value, f'{where}.{key}', root)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _data_file_refs(value, f'{where}.{i}', root)


def check_data_files(cfg: Config, sections: Sequence[str]) -> None:
    """Exit with one line naming the first missing info file of ``sections`` and the command that makes it."""
    for section in sections:
        node = cfg.get(section, None)
        if node is None:
            continue
        node = node.to_dict() if hasattr(node, 'to_dict') else node
        for where, path, root, version in _data_file_refs(node, section):
            if osp.isfile(path):
                continue
            name = osp.basename(path)
            tag = name.split('_dbinfos_')[0] if '_dbinfos_' in name else name.split('_infos_')[0]
            root = root or cfg.get('data_root', None) or osp.dirname(path)
            found = sorted(d for d in os.listdir(root) if d.startswith('v1.0-')) if osp.isdir(root) else []
            version = version or cfg.get('nus_version', None)
            if version not in found and len(found) == 1:
                version = found[0]  # the version folder this root holds
            version = version or 'v1.0-trainval'
            out_dir = osp.dirname(path) or '.'
            raise SystemExit(
                f'error: {where} = {path!r} does not exist; make it with: python tools/create_data.py nuscenes '
                f'--root-path {root} --out-dir {out_dir} --extra-tag {tag} --version {version}'
                + (' (GT-sampling database: leave out --no-dbinfos)' if '_dbinfos_' in name else ''))


def add_load_report_hook(cfg: Config) -> None:
    """Add ``CheckpointLoadReportHook`` (every tensor of the loaded file checked against the model)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(isinstance(h, dict) and h.get('type') == 'CheckpointLoadReportHook' for h in hooks):
        hooks.append(dict(type='CheckpointLoadReportHook'))
    cfg.custom_hooks = hooks


def _default_master(launcher: str) -> str:
    if launcher == 'slurm' and 'SLURM_NODELIST' in os.environ:
        out = subprocess.getoutput(f'scontrol show hostname {os.environ["SLURM_NODELIST"]} | head -n1')
        if out.strip():
            return out.strip()
    return '127.0.0.1'


def init_cpu_distributed(launcher: str, backend: str = 'gloo', timeout: Optional[float] = None) -> None:
    """Start the process group without touching CUDA (mmengine's ``init_dist`` calls
    ``torch.cuda.set_device``, which a CPU build of torch lacks)."""
    env = os.environ
    if launcher == 'pytorch':
        missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in env]
        if missing:
            raise SystemExit(f'error: --launcher pytorch needs the environment variables {missing} '
                             '(start with tools/dist_train.sh or torchrun)')
        rank, world = int(env['RANK']), int(env['WORLD_SIZE'])
    elif launcher == 'slurm':
        rank, world = int(env['SLURM_PROCID']), int(env['SLURM_NTASKS'])
        env.setdefault('LOCAL_RANK', env.get('SLURM_LOCALID', '0'))
    elif launcher == 'mpi':
        rank, world = int(env['OMPI_COMM_WORLD_RANK']), int(env['OMPI_COMM_WORLD_SIZE'])
        env.setdefault('LOCAL_RANK', env.get('OMPI_COMM_WORLD_LOCAL_RANK', '0'))
    else:
        raise ValueError(f'unknown launcher {launcher!r}')
    env.setdefault('MASTER_ADDR', _default_master(launcher))
    env.setdefault('MASTER_PORT', env.get('PORT', '29500'))
    env['RANK'], env['WORLD_SIZE'] = str(rank), str(world)
    kwargs = {} if timeout is None else dict(timeout=timedelta(seconds=timeout))
    torch.distributed.init_process_group(backend=backend, init_method='env://', rank=rank, world_size=world,
                                         **kwargs)


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; on a machine without CUDA make a distributed launch use gloo and a
    ``DistributedDataParallel`` without device ids, and start the process group here."""
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        print_log(f"no CUDA: distributed backend {dist_cfg.get('backend', 'nccl')!r} -> 'gloo'",
                  logger='current', level=logging.WARNING)
    dist_cfg['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg', None) or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    if not torch.distributed.is_initialized():
        init_cpu_distributed(launcher, 'gloo', dist_cfg.get('timeout', None))


def default_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> str:
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir', None) is not None:
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def build_train_cfg(args: argparse.Namespace) -> Config:
    """The config of a training run from parsed arguments."""
    cfg = load_config(args.config)
    cfg = merge_cfg_options(cfg, args.cfg_options)
    cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)

    if args.amp:
        from mmengine.device import get_device
        if get_device() == 'cpu':
            raise SystemExit('error: --amp needs a GPU (mmengine\'s AmpOptimWrapper does not train on CPU); '
                             'leave --amp out on this machine')
        wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper_type == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config', logger='current', level=logging.WARNING)
        elif wrapper_type != 'OptimWrapper':
            raise SystemExit(f'error: --amp needs optim_wrapper.type OptimWrapper, got {wrapper_type!r}')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise SystemExit('error: --auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise SystemExit(f'error: --resume checkpoint {args.resume!r} does not exist')
        cfg.resume = True
        cfg.load_from = args.resume
    if args.resume == 'auto' and not osp.isfile(osp.join(cfg.work_dir, 'last_checkpoint')):
        print_log(f'note: --resume without a path, but {cfg.work_dir} has no last_checkpoint: training starts '
                  'from the beginning', logger='current', level=logging.WARNING)
    if cfg.get('load_from', None) or cfg.get('resume', False):
        add_load_report_hook(cfg)
    return cfg


def main(argv: Optional[List[str]] = None):
    """Train; returns the runner (for tests and scripts)."""
    args = parse_args(argv)
    import_plugins()
    cfg = build_train_cfg(args)
    if cfg.get('train_dataloader', None) is None:
        raise SystemExit(f'error: {args.config} has no train_dataloader: it cannot be trained')
    check_data_files(cfg, ['train_dataloader'] + (
        ['val_dataloader', 'val_evaluator'] if cfg.get('val_cfg', None) and cfg.get('val_dataloader', None)
        else []))
    setup_launcher(cfg, args.launcher)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    return runner


def _close_process_group() -> None:
    """Leave the process group together: ranks that exit while another still tears gloo down can abort."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1:])
    _close_process_group()

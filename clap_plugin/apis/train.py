"""The command line of tools/train.py: train a detector or a pre-training model from a config with
mmengine's Runner (mmdet3d's CLI).

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
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from .config_options import add_load_report_hook, default_work_dir, import_plugins, load_config, merge_cfg_options
from .data_files import check_data_files
from .launcher import add_launcher_args, export_local_rank, setup_launcher


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
    add_launcher_args(parser)
    args = parser.parse_args(argv)
    export_local_rank(args)
    return args


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

    from ..datasets.transforms.bad_sample import BadSampleError
    from ..engine.hooks import NonFiniteLossError
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    try:
        runner.train()
    except (NonFiniteLossError, BadSampleError) as err:
        # one line, no traceback: the message names the term / file, iteration / token, checkpoint / sensor
        raise SystemExit(f'error: {_last_line(str(err))}') from err
    return runner


def _last_line(message: str) -> str:
    """The error's own line: a loader worker's error arrives wrapped in torch's multi-line traceback."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    return lines[-1].split(': ', 1)[-1] if len(lines) > 1 and 'Traceback' in message else message.strip()

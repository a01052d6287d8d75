"""The command line of tools/test.py: evaluate a checkpoint with a config's test dataloader and evaluator
(mmdet3d's CLI).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...] [--show-dir DIR]
                         [--score-thr T] [--launcher {none,pytorch,slurm,mpi}]

Prints the evaluator's metrics (NuScenesMetric: mAP, NDS, per-class AP, ...). ``--cfg-options data_root=DIR``
moves every path under the config's data root, as in tools/train.py.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional, Sequence

from mmengine.config import DictAction

from .config_options import add_load_report_hook, default_work_dir, import_plugins, load_config, merge_cfg_options
from .data_files import check_data_files
from .launcher import add_launcher_args, export_local_rank, setup_launcher

_DEFAULT_SCORE_THR = 0.1
_DEFAULT_TASK = 'multi-view_det'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a checkpoint')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the evaluation logs '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, "key=value" (e.g. data_root=/data/nus/)')
    parser.add_argument('--show-dir', help='write visualisations of the predictions into '
                        'WORK_DIR/TIMESTAMP/SHOW_DIR')
    parser.add_argument('--score-thr', type=float, default=_DEFAULT_SCORE_THR,
                        help='score threshold of the --show-dir pictures')
    parser.add_argument('--task', choices=['lidar_det', 'multi-view_det', 'multi-modality_det'],
                        default=_DEFAULT_TASK,
                        help='what --show-dir draws: predicted boxes in the camera images '
                        '(multi-view_det, the default) or with the point cloud (lidar_det / '
                        'multi-modality_det); all need open3d')
    add_launcher_args(parser)
    args = parser.parse_args(argv)
    export_local_rank(args)
    return args


def enable_visualization(cfg, show_dir: str, score_thr: float, task: str) -> None:
    """Turn the Det3DVisualizationHook on to draw predictions into ``show_dir``."""
    import importlib.util
    if importlib.util.find_spec('open3d') is None:
        # mmdet3d's Det3DLocalVisualizer opens an open3d scene for every 3D task (multi-view included)
        raise SystemExit('error: --show-dir needs open3d (mmdet3d 1.4 draws 3D results with it); '
                         'install it with "pip install open3d" or leave --show-dir out')
    hooks = cfg.get('default_hooks', None)
    if hooks is None or 'visualization' not in hooks:
        raise SystemExit("error: --show-dir needs default_hooks.visualization (e.g. "
                         "dict(type='Det3DVisualizationHook')) in the config")
    vis = hooks['visualization']
    vis['draw'] = True
    vis['test_out_dir'] = show_dir
    vis['score_thr'] = score_thr
    vis['vis_task'] = task
    vis['show'] = False


def main(argv: Optional[List[str]] = None) -> dict:
    """Evaluate; returns the metrics dict."""
    args = parse_args(argv)
    import_plugins()
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint {args.checkpoint!r} does not exist')
    cfg = load_config(args.config)
    cfg = merge_cfg_options(cfg, args.cfg_options)
    cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    missing = [k for k in ('test_dataloader', 'test_evaluator', 'test_cfg') if cfg.get(k, None) is None]
    if missing:
        raise SystemExit(f'error: {args.config} has no {"/".join(missing)}: it is not an evaluation config (a '
                         'pre-training config); export the encoders, fine-tune, and test the fine-tune config')
    check_data_files(cfg, ['test_dataloader', 'test_evaluator'])
    add_load_report_hook(cfg)
    if args.show_dir:
        enable_visualization(cfg, args.show_dir, args.score_thr, args.task)
    elif args.score_thr != _DEFAULT_SCORE_THR or args.task != _DEFAULT_TASK:
        print('note: --score-thr / --task only change the --show-dir pictures; without --show-dir they do nothing',
              file=sys.stderr)
    setup_launcher(cfg, args.launcher)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    return runner.test()

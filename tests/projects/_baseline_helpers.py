"""Shared helpers of the baseline tests: run a tiny pre-training config for a few iterations."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdet3d.registry import HOOKS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


@HOOKS.register_module(force=True)
class _RecordBaselineLosses(Hook):
    """Keeps the logged outputs of every training iteration and the parameters before/after."""
    records: list = []
    params: dict = {}

    def before_train(self, runner):
        self.params['start'] = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.records.append({k: float(v.detach()) for k, v in outputs.items()})

    def after_train(self, runner):
        self.params['end'] = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


def run_tiny(config: str, data_root: str, work_dir, iters: int = 2):
    """Train ``config`` (a path relative to the repository root) for ``iters`` iterations on ``data_root``;
    returns (per-iteration logged outputs, parameters at start, parameters at end, runner)."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.work_dir = str(work_dir)
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=iters, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', [])] + [dict(type='_RecordBaselineLosses')]
    cfg.launcher = 'none'
    _RecordBaselineLosses.records = []
    _RecordBaselineLosses.params = {}
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return _RecordBaselineLosses.records, _RecordBaselineLosses.params['start'], \
        _RecordBaselineLosses.params['end'], runner


def export_and_check_finetune_keys(ckpt: str, out: str, dropped_prefixes):
    """Export ``ckpt`` with tools/export_pretrained.py and check that the encoder weights cover every encoder
    parameter of the fine-tune detector (configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py) with the same
    shapes, and that the method's own modules were dropped."""
    import importlib.util

    from mmdet3d.registry import MODELS

    spec = importlib.util.spec_from_file_location('_export_pretrained', osp.join(ROOT, 'tools',
                                                                                 'export_pretrained.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    kept, dropped = mod.export(ckpt, out)
    assert {k.split('.', 1)[0] for k in dropped} == set(dropped_prefixes)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'bevfusion_lidar-cam_finetune_nus_cpu-tiny.py'))
    detector = MODELS.build(cfg.model)
    target = {k: v for k, v in detector.state_dict().items() if k.split('.', 1)[0] in mod.ENCODER_PREFIXES}
    saved = torch.load(out, map_location='cpu', weights_only=False)['state_dict']
    assert saved.keys() == target.keys()
    assert all(saved[k].shape == target[k].shape for k in target)
    missing, unexpected = detector.load_state_dict(saved, strict=False)
    assert not unexpected and all(k.startswith('bbox_head.') for k in missing)

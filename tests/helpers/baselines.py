"""Shared helpers of the baseline tests: run a tiny pre-training config for a few iterations."""
import os.path as osp

import torch
from mmdet3d.registry import HOOKS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

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


def run_tiny(config: str, data_root: str, work_dir, iters: int = 2, cfg_options: dict = None):
    """Train ``config`` (a path relative to the repository root) for ``iters`` iterations on ``data_root``;
    returns (per-iteration logged outputs, parameters at start, parameters at end, runner)."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
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


def write_teacher(path: str, config: str = 'configs/_base_/models/bevfusion_cpu-tiny.py', seed: int = 3) -> dict:
    """Save a (randomly initialised, seeded) image backbone of ``config`` as a 2D-teacher checkpoint laid out as
    tools/train_2d_teacher.py writes it (``img_backbone.*`` plus a ``seg_head.*`` entry); returns its weights."""
    from mmdet3d.registry import MODELS

    from clap_plugin.utils.state_dicts import save_checkpoint
    cfg = Config.fromfile(osp.join(ROOT, config))
    torch.manual_seed(seed)
    backbone = MODELS.build(cfg.model.img_backbone)
    state = backbone.state_dict()
    full = type(state)((f'img_backbone.{k}', v) for k, v in state.items())
    full['seg_head.classifier.weight'] = torch.zeros(9, 64, 1, 1)
    save_checkpoint(path, full, dict(task='test teacher'))
    return {k: v.clone() for k, v in state.items()}


def export_and_check_finetune_keys(ckpt: str, out: str, dropped_prefixes, trained_prefixes):
    """Export ``ckpt`` with tools/export_pretrained.py (which reads the method's trained modules from the config
    stored in the checkpoint) and check: exactly the encoder weights of ``trained_prefixes`` are exported, with
    the fine-tune detector's (configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py) names and shapes; the other
    encoders and the method's own modules (``dropped_prefixes``) are left out, so the detector keeps its own
    initialisation for them at ``load_from``."""
    from mmdet3d.registry import MODELS

    from clap_plugin.apis import export_pretrained as mod
    kept, dropped = mod.export(ckpt, out)
    untrained = [p for p in mod.ENCODER_PREFIXES if p not in trained_prefixes]
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    untrained_present = {p for p in untrained if any(k.split('.', 1)[0] == p for k in state)}
    assert untrained_present, 'the test needs a method that leaves some encoder untrained'
    assert {k.split('.', 1)[0] for k in dropped} == set(dropped_prefixes) | untrained_present
    assert {k.split('.', 1)[0] for k in kept} == set(trained_prefixes)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'bevfusion_lidar-cam_finetune_nus_cpu-tiny.py'))
    detector = MODELS.build(cfg.model)
    target = {k: v for k, v in detector.state_dict().items() if k.split('.', 1)[0] in trained_prefixes}
    saved = torch.load(out, map_location='cpu', weights_only=False)
    assert saved['meta']['left_out'] == [p for p in mod.ENCODER_PREFIXES if p in untrained_present]
    saved = saved['state_dict']
    assert saved.keys() == target.keys()
    assert all(saved[k].shape == target[k].shape for k in target)
    missing, unexpected = detector.load_state_dict(saved, strict=False)
    assert not unexpected
    assert {k.split('.', 1)[0] for k in missing} == {'bbox_head'} | {
        p for p in untrained if any(k.split('.', 1)[0] == p for k in detector.state_dict())}
    return kept, dropped

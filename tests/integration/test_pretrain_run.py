"""CLAP pre-training runs: label-free, every loss term logged, resume restores everything, two CPU ranks."""
import copy
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import torch
from mmdet3d.registry import HOOKS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.runner import Runner

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TINY = osp.join(ROOT, 'configs', 'clap_pretrain_nus_cpu-tiny.py')
LOSSES = ('loss_range', 'loss_surface', 'loss_rgb', 'loss_swap', 'loss_em', 'loss_gram')


@HOOKS.register_module(force=True)
class _CaptureTrainingState(Hook):
    """Records model, optimizer and EM-hook state after training ends / right after a resume."""
    store: dict = {}
    priority = 'LOWEST'

    def _capture(self, runner, key):
        model = runner.model
        em = next(h for h in runner.hooks if type(h).__name__ == 'PrototypeEMHook')
        opt = runner.optim_wrapper.optimizer.state_dict()
        self.store[key] = dict(
            params={k: v.detach().clone() for k, v in model.state_dict().items()},
            optim=copy.deepcopy(opt['state']), em=copy.deepcopy(em.state_dict()),
            epoch=MessageHub.get_current_instance().get_info('epoch'),
            warmup=model.ray_selector.in_warmup(MessageHub.get_current_instance().get_info('epoch', 0)),
            iter=runner.iter)

    def before_train(self, runner):
        self._capture(runner, 'start')

    def after_train(self, runner):
        self._capture(runner, 'end')


def _cfg(root, work_dir, max_epochs):
    cfg = Config.fromfile(TINY)
    cfg.work_dir = str(work_dir)
    cfg.train_dataloader.dataset.data_root = root
    cfg.train_cfg.max_epochs = max_epochs
    cfg.param_scheduler[0].T_max = 2
    cfg.param_scheduler[0].end = 2
    hooks = [h for h in cfg.custom_hooks if h['type'] != 'CLAPVisualizationHook']
    cfg.custom_hooks = hooks + [dict(type='CLAPVisualizationHook', interval=3, camera=0, stride=8),
                                dict(type='_CaptureTrainingState')]
    cfg.default_hooks.logger.interval = 1
    cfg.launcher = 'none'
    return cfg


def _equal_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            _equal_state(a[k], b[k])
        elif isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


def test_pretrain_is_label_free_logs_losses_and_resumes(synthetic_nus, tmp_path, monkeypatch):
    from mmdet3d.datasets import Det3DDataset, NuScenesDataset

    def no_labels(self, info):
        raise AssertionError('pre-training read annotations')
    monkeypatch.setattr(NuScenesDataset, 'parse_ann_info', no_labels)
    monkeypatch.setattr(Det3DDataset, 'parse_ann_info', no_labels)
    torch.manual_seed(0)

    runner = Runner.from_cfg(_cfg(synthetic_nus, tmp_path, 1))
    runner.train()
    hub = runner.message_hub
    for key in LOSSES:
        values = hub.get_scalar(f'train/{key}').data[0]
        assert len(values) == 3 and all(torch.isfinite(torch.tensor(values))), key
    end = _CaptureTrainingState.store['end']
    assert end['warmup'] is True or end['epoch'] == 0  # the first epoch is the uniform warm-up
    assert osp.isfile(tmp_path / 'epoch_1.pth')
    pictures = sorted(os.listdir(tmp_path / 'vis'))
    assert pictures == ['iter_000003_pretrain.png', 'metrics.png']  # one labelled figure per step + metrics
    import cv2
    for name in pictures:
        fig = cv2.imread(str(tmp_path / 'vis' / name))
        assert fig is not None and min(fig.shape[:2]) >= 600 and fig.std() > 5, name  # readable, not strips

    cfg = _cfg(synthetic_nus, tmp_path, 2)
    cfg.resume = True
    cfg.load_from = str(tmp_path / 'epoch_1.pth')
    runner2 = Runner.from_cfg(cfg)
    runner2.train()
    start = _CaptureTrainingState.store['start']
    _equal_state(end['params'], start['params'])
    _equal_state(end['optim'], start['optim'])
    _equal_state(end['em'], start['em'])
    assert start['iter'] == end['iter'] == 3
    assert start['epoch'] == 1 and start['warmup'] is False  # curvature sampling resumes after the warm-up
    assert _CaptureTrainingState.store['end']['iter'] == 6

    # the exported encoders fill every encoder key of the fine-tune detector, with equal shapes
    out = tmp_path / 'clap_encoders.pth'
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'export_pretrained.py'),
                           str(tmp_path / 'epoch_2.pth'), str(out)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from mmdet3d.registry import MODELS
    ft_cfg = Config.fromfile(osp.join(ROOT, 'configs', 'bevfusion_lidar-cam_finetune_nus_cpu-tiny.py'))
    detector = MODELS.build(ft_cfg.model)
    exported = torch.load(out, map_location='cpu')['state_dict']
    prefixes = ('img_backbone.', 'img_neck.', 'view_transform.', 'pts_voxel_encoder.', 'pts_middle_encoder.',
                'fusion_layer.', 'pts_backbone.', 'pts_neck.')
    encoder = {k: v for k, v in detector.state_dict().items() if k.startswith(prefixes)}
    assert set(exported) == set(encoder)
    assert all(exported[k].shape == encoder[k].shape for k in encoder)
    pretrained = runner2.model.state_dict()
    assert all(torch.equal(exported[k], pretrained[k]) for k in exported)

    # BN statistics re-estimated on unmasked inputs: the weights stay, the running statistics move
    out_bn = tmp_path / 'clap_encoders_bn.pth'
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'export_pretrained.py'),
                           str(tmp_path / 'epoch_2.pth'), str(out_bn), '--config', TINY,
                           '--data-root', f'{synthetic_nus}/', '--bn-batches', '2'],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'BN running statistics: recompute' in proc.stdout
    bn = torch.load(out_bn, map_location='cpu')['state_dict']
    assert set(bn) == set(exported)
    stats = [k for k in bn if k.endswith(('running_mean', 'running_var'))]
    assert stats and all(torch.equal(bn[k], exported[k]) for k in bn if k not in stats and
                         not k.endswith('num_batches_tracked'))
    assert sum(not torch.allclose(bn[k], exported[k]) for k in stats) > len(stats) // 2


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_cpu_processes_keep_identical_weights(synthetic_nus, tmp_path):
    cfg_path = tmp_path / 'two_ranks.py'
    cfg_path.write_text(
        f"_base_ = ['{TINY}']\n"
        "custom_hooks = [dict(type='PrototypeEMHook', interval=1, freeze_iters=0),\n"
        "                dict(type='RankConsistencyHook', tolerance=0.0)]\n"
        "train_cfg = dict(max_epochs=1)\n")
    env = dict(os.environ, PORT=str(_free_port()), PYTHON=sys.executable, OMP_NUM_THREADS='1')
    work = tmp_path / 'work'
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), str(cfg_path), '2', '--work-dir',
                           str(work), '--cfg-options', f'data_root={synthetic_nus}/'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(work / 'rank_consistency.json') as f:
        report = json.load(f)
    assert report['world_size'] == 2
    assert {'prototype_loss', 'pts_middle_encoder', 'img_backbone', 'pts_backbone'} <= set(report['max_abs_diff'])
    assert max(report['max_abs_diff'].values()) == 0.0
    assert osp.isfile(work / 'epoch_1.pth')

"""NonFiniteLossHook: a NaN loss term stops the CPU-tiny pre-training with the term's name and no checkpoint
after it; with policy='skip' the step leaves the weights as they were and is counted."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from clap_plugin.engine.hooks import AtomicCheckpointHook, NonFiniteLossError, NonFiniteLossHook
from clap_plugin.engine.hooks.non_finite_loss_hook import non_finite_terms
from tests.helpers.paths import REPO

PRETRAIN = osp.join(REPO, 'configs', 'clap_pretrain_nus_cpu-tiny.py')


def _poison(model, term: str, at_call: int):
    """Make ``model.loss`` return NaN for ``term`` on its ``at_call``-th call (1-based)."""
    real, calls = model.loss, []

    def loss(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == at_call:
            out[term] = out[term] * float('nan')
        return out
    model.loss = loss


def test_non_finite_terms_names_the_terms_and_the_sum_last():
    log_vars = {'loss': torch.tensor(float('nan')), 'loss_rgb': torch.tensor(float('inf')),
                'loss_range': torch.tensor(1.0), 'proto_ppl': torch.tensor(float('nan'))}
    assert non_finite_terms(log_vars) == ['loss_rgb', 'loss']  # metrics without 'loss' are not checked
    with pytest.raises(ValueError, match='policy'):
        NonFiniteLossHook(policy='ignore')


def test_nan_loss_term_stops_the_pretraining_with_its_name(synthetic_nus, tmp_path):
    cfg = Config.fromfile(PRETRAIN)
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.dataset.data_root = f'{synthetic_nus}/'
    cfg.train_cfg.max_epochs = 2
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] != 'CLAPVisualizationHook']
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    _poison(runner.model, 'loss_rgb', at_call=5)  # iteration 5: the second of epoch 2
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    assert 'loss_rgb=nan' in msg and 'iteration 5' in msg and 'epoch_1.pth' in msg, msg
    assert '\n' not in msg
    assert sorted(osp.basename(p) for p in glob.glob(str(tmp_path / '*.pth'))) == ['epoch_1.pth']
    # the optimizer never applied the NaN step: every weight of the model is finite
    assert all(torch.isfinite(v).all() for v in runner.model.state_dict().values() if v.is_floating_point())


class _Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.calls = 0

    def forward(self, x, mode='loss'):
        self.calls += 1
        loss = self.lin(x).pow(2).mean()
        return dict(loss_a=loss, loss_b=loss * (float('nan') if self.calls == 3 else 1.0))


def test_skip_policy_leaves_the_weights_and_counts(tmp_path):
    from mmengine.hooks import Hook

    weights = []

    class Watch(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            weights.append(runner.model.lin.weight.detach().clone())

    data = [dict(x=torch.ones(2)) for _ in range(5)]
    runner = Runner(model=_Toy(), work_dir=str(tmp_path), default_scope='mmdet3d',  # the suite's scope
                    train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                                          batch_size=1, collate_fn=dict(type='default_collate')),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                    train_cfg=dict(by_epoch=True, max_epochs=1),
                    default_hooks=dict(checkpoint=AtomicCheckpointHook(interval=1),
                                       logger=dict(type='LoggerHook', interval=1)),
                    custom_hooks=[NonFiniteLossHook(policy='skip'), Watch()])
    runner.train()
    weights.append(runner.model.lin.weight.detach().clone())
    assert torch.equal(weights[2], weights[3])  # the NaN step (third) changed nothing
    assert not torch.equal(weights[1], weights[2]) and not torch.equal(weights[3], weights[4])
    assert runner.message_hub.get_scalar('train/nonfinite_skipped').current() == 1
    assert all(torch.isfinite(v).all() for v in torch.load(tmp_path / 'epoch_1.pth')['state_dict'].values())

"""PauselessIterBasedTrainLoop: the batches, their order and the trained weights equal those of mmengine's
IterBasedTrainLoop, without its 2 s sleep at each pass over a worker-less dataloader: the same random numbers
are drawn, so a model that draws noise in training ends with the same weights."""
import time

import torch
from mmengine.config import Config
from mmengine.dataset import DefaultSampler
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch import nn
from torch.utils.data import DataLoader

from clap_plugin.engine.loops import CyclingDataloaderIterator, PauselessIterBasedTrainLoop
from tests.helpers.paths import REPO


def _loader(n: int = 5, batch: int = 2, workers: int = 0) -> DataLoader:
    data = list(range(n))
    return DataLoader(data, batch_size=batch, sampler=DefaultSampler(data, shuffle=True, seed=3), num_workers=workers)


def _count_sleeps(monkeypatch) -> list:
    calls = []
    monkeypatch.setattr(time, 'sleep', lambda s: calls.append(s))
    return calls


def test_cycling_iterator_reads_what_mmengines_reads_without_sleeping(monkeypatch):
    sleeps = _count_sleeps(monkeypatch)
    ours = CyclingDataloaderIterator(_loader())
    got = [next(ours).tolist() for _ in range(12)]  # 3 batches a pass: 4 passes, 3 restarts
    assert sleeps == [] and ours.restarts == 3
    reference = _InfiniteDataloaderIterator(_loader())
    expected = [next(reference).tolist() for _ in range(12)]
    assert sleeps == [2, 2, 2]  # mmengine's pause, once per restart
    assert got == expected
    # each pass is a fresh shuffle (set_epoch called), not the first order repeated
    passes = [sum(got[3 * k:3 * k + 3], []) for k in range(4)]
    assert all(sorted(p) == list(range(5)) for p in passes)
    assert len({tuple(p) for p in passes}) > 1


class _Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 1)

    def forward(self, x, mode='loss'):
        # noise from torch's generator, as augmentation or dropout would draw: the weights depend on the stream
        x = x.float().unsqueeze(1) + 0.5 * torch.randn(len(x), 1)
        return dict(loss=(self.lin(x) - 1).pow(2).mean())


class _Seen(Hook):
    def __init__(self):
        self.batches = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.batches.append(data_batch['x'].tolist())


def _train(loop: str, tmp_path, workers: int = 0):
    seen = _Seen()
    torch.manual_seed(0)  # the same initial weights for both loops
    data = [dict(x=i) for i in range(5)]
    runner = Runner(model=_Toy(), work_dir=str(tmp_path / loop), default_scope='mmdet3d',
                    train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=True),
                                          batch_size=2, num_workers=workers, collate_fn=dict(type='default_collate')),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                    train_cfg=dict(type=loop, max_iters=10), randomness=dict(seed=7),
                    default_hooks=dict(checkpoint=None), custom_hooks=[seen])
    return runner, seen


def test_loop_trains_the_same_weights_as_mmengines(tmp_path, monkeypatch):
    sleeps = _count_sleeps(monkeypatch)
    runner, seen = _train('PauselessIterBasedTrainLoop', tmp_path)
    assert isinstance(runner.train_loop, PauselessIterBasedTrainLoop)
    runner.train()
    assert sleeps == [] and runner.train_loop.iter == 10
    ref_runner, ref_seen = _train('IterBasedTrainLoop', tmp_path)
    ref_runner.train()
    assert len(sleeps) == 3  # 10 iterations over 3 batches a pass
    assert seen.batches == ref_seen.batches
    assert torch.equal(runner.model.lin.weight, ref_runner.model.lin.weight)
    torch.manual_seed(0)
    assert not torch.equal(runner.model.lin.weight, _Toy().lin.weight)  # it did train


def test_loop_keeps_mmengines_iterator_when_the_dataloader_has_workers(tmp_path):
    runner, _ = _train('PauselessIterBasedTrainLoop', tmp_path, workers=1)
    loop = runner.train_loop
    assert isinstance(loop, PauselessIterBasedTrainLoop)
    assert isinstance(loop.dataloader_iterator, _InfiniteDataloaderIterator)


def test_cpu_fine_tune_config_uses_the_pauseless_loop():
    cfg = Config.fromfile(f'{REPO}/configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py')
    assert cfg.train_cfg.type == 'PauselessIterBasedTrainLoop'
    assert 'clap_plugin' in cfg.custom_imports['imports']

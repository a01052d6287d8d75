"""Prototype EM hook: clustering, re-seeding, freezing, rank agreement, logging, checkpoint state."""
import os
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import nn

import clap_plugin  # noqa: F401
from clap_plugin.engine.hooks import PrototypeEMHook
from component_gloo import run_gloo
from mmdet3d.registry import HOOKS


class ProtoHolder(nn.Module):
    """Minimal owner of prototypes and last embeddings (the interface of SwappedPrototypeLoss)."""

    def __init__(self, n, d, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.prototypes = nn.Parameter(F.normalize(torch.randn(n, d, generator=g), dim=-1))
        self.last_embeddings = {}


def clusters(num, per, d, seed, spread=0.05):
    """``num`` well separated unit centres and ``per`` noisy unit samples around each."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.linalg.qr(torch.randn(d, d, generator=g))[0][:num]  # orthonormal rows
    pts = centres[:, None, :] + spread * torch.randn(num, per, d, generator=g)
    return centres, F.normalize(pts, dim=-1)


def _runner(model, it):
    return SimpleNamespace(model=model, iter=it, message_hub=MessageHub.get_instance('proto_em_test'))


def _train(hook, model, batches, start=0, step=None):
    for i, batch in enumerate(batches):
        runner = _runner(model, start + i)
        hook.before_train_iter(runner, i)
        if step is not None:
            step(model)
        model.last_embeddings = batch
        hook.after_train_iter(runner, i)


def test_em_steps_find_the_clusters_and_log_usage():
    centres, pts = clusters(8, 400, 16, 0)
    model = ProtoHolder(32, 16, seed=1)
    hook = HOOKS.build(dict(type='PrototypeEMHook', interval=2, buffer_size=4096, temperature=0.1, momentum=0.5))
    g = torch.Generator().manual_seed(2)
    batches = []
    for _ in range(40):
        idx = torch.randint(0, 400, (8, 32), generator=g)
        sample = pts[torch.arange(8)[:, None], idx].reshape(-1, 16)
        batches.append(dict(lidar=sample[:128], camera=sample[128:]))
    _train(hook, model, batches)
    cos = centres @ F.normalize(model.prototypes.detach(), dim=-1).t()
    assert torch.all(cos.max(dim=1).values > 0.95), cos.max(dim=1).values
    assert torch.allclose(model.prototypes.detach().norm(dim=-1), torch.ones(32), atol=1e-6)
    hub = MessageHub.get_instance('proto_em_test')
    for key in ('train/proto_perplexity', 'train/proto_used', 'train/proto_gram_offdiag'):
        assert key in hub.log_scalars, key
    assert 1.0 <= hub.get_scalar('train/proto_perplexity').current() <= 32.0
    assert hub.get_scalar('train/proto_used').current() >= 8
    assert hook.num_updates == 20


def test_far_prototype_is_reseeded():
    _, pts = clusters(4, 100, 8, 3)
    data = pts.reshape(-1, 8)
    model = ProtoHolder(6, 8)
    with torch.no_grad():
        model.prototypes[0] = -F.normalize(data.mean(0), dim=0)  # opposite to all data
    hook = PrototypeEMHook(interval=1, temperature=0.1, momentum=0.9, dead_threshold=0.05)
    hook.push(data)
    stats = hook.em_step(model.prototypes.data, data)
    assert stats['reseeded'] >= 1 and hook.num_reseeded >= 1
    assert float((data @ model.prototypes[0].detach()).max()) > 0.9


def test_freeze_and_unit_norm_after_steps():
    _, pts = clusters(4, 50, 8, 4)
    model = ProtoHolder(6, 8)
    start = model.prototypes.detach().clone()
    hook = PrototypeEMHook(interval=100, freeze_iters=3)

    def optimizer_step(m):
        with torch.no_grad():
            m.prototypes.add_(0.3)

    batch = dict(lidar=pts[0], camera=pts[1])
    _train(hook, model, [batch] * 3, step=optimizer_step)
    assert torch.allclose(model.prototypes.detach(), start, atol=1e-6)  # frozen
    _train(hook, model, [batch], start=3, step=optimizer_step)
    assert not torch.allclose(model.prototypes.detach(), start, atol=1e-3)  # free now
    assert torch.allclose(model.prototypes.detach().norm(dim=-1), torch.ones(6), atol=1e-6)
    assert hook.buffer_filled == 4 * 100


def _hook_worker(rank, world, out_dir):
    _, pts = clusters(4, 64, 8, 5)
    model = ProtoHolder(6, 8, seed=rank)  # different on purpose: the hook makes them agree
    hook = PrototypeEMHook(interval=2, buffer_size=256)
    data = pts.reshape(-1, 8)
    half = data.chunk(world)[rank]
    _train(hook, model, [dict(lidar=half[:32], camera=half[32:64]), dict(lidar=half[64:96], camera=half[96:])])
    torch.save(model.prototypes.detach(), os.path.join(out_dir, f'k{rank}.pth'))


def test_two_ranks_end_with_identical_prototypes(tmp_path):
    run_gloo(_hook_worker, 2, str(tmp_path))
    k0, k1 = (torch.load(tmp_path / f'k{r}.pth') for r in range(2))
    assert torch.equal(k0, k1)
    assert torch.allclose(k0.norm(dim=-1), torch.ones(6), atol=1e-6)
    # equal to one process holding both ranks' buffers (rank 0's prototypes are broadcast)
    _, pts = clusters(4, 64, 8, 5)
    model = ProtoHolder(6, 8, seed=0)
    hook = PrototypeEMHook(interval=2, buffer_size=512)
    data = pts.reshape(-1, 8)
    _train(hook, model, [dict(lidar=data[:128]), dict(lidar=data[128:])])
    assert torch.allclose(model.prototypes.detach(), k0, atol=1e-6)


def test_state_survives_checkpoint_round_trip(tmp_path):
    _, pts = clusters(4, 80, 8, 6)
    model = ProtoHolder(6, 8)
    hook = PrototypeEMHook(interval=2, buffer_size=100)
    _train(hook, model, [dict(lidar=pts[i], camera=pts[(i + 1) % 4]) for i in range(3)])
    ckpt = {}
    hook.before_save_checkpoint(None, ckpt)
    torch.save(ckpt, tmp_path / 'c.pth')
    loaded = torch.load(tmp_path / 'c.pth')  # weights_only=True (torch default) must accept the state
    fresh = PrototypeEMHook(interval=2, buffer_size=100)
    fresh.after_load_checkpoint(None, loaded)
    assert torch.equal(fresh.buffer, hook.buffer)
    for key in ('buffer_pos', 'buffer_filled', 'num_updates', 'num_reseeded'):
        assert getattr(fresh, key) == getattr(hook, key), key
    assert (fresh.buffer_pos, fresh.buffer_filled, fresh.num_updates) == (80, 100, 1)


class _PairedCells(torch.utils.data.Dataset):

    def __len__(self):
        return 64

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(lidar=torch.randn(8, generator=g), camera=torch.randn(4, generator=g))


def _toy_runner(work_dir, name, resume_from=None):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from clap_plugin.models.prototypes import GramRegularizer, SwappedPrototypeLoss

    class ToyPretrainer(BaseModel):

        def __init__(self):
            super().__init__()
            self.proto = SwappedPrototypeLoss(lidar_channels=8, camera_channels=4, embed_dim=8, num_prototypes=6,
                                              hidden_channels=16)
            self.gram = GramRegularizer()

        def forward(self, lidar, camera, data_samples=None, mode='loss'):
            losses = self.proto(lidar, camera)
            losses['loss_gram'] = self.gram(self.proto.prototypes)
            return losses

    torch.manual_seed(0)
    return Runner(
        model=ToyPretrainer(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=_PairedCells(), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=16, num_workers=0, collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=4), optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False)),
        custom_hooks=[dict(type=PrototypeEMHook, interval=2, buffer_size=40, freeze_iters=1)],
        resume=resume_from is not None, load_from=resume_from, default_scope='mmdet3d', log_level='WARNING')


def _em_hook(runner):
    return next(h for h in runner.hooks if isinstance(h, PrototypeEMHook))


def test_runner_save_and_resume_restore_the_hook_state(tmp_path):
    first = _toy_runner(tmp_path, 'first')
    first.train()
    saved = _em_hook(first).state_dict()
    assert saved['num_updates'] == 2 and saved['buffer_filled'] == 40 and saved['buffer_pos'] == (4 * 32) % 40
    # a second runner resuming the checkpoint (same max_iters: nothing left to train) gets the same state
    second = _toy_runner(tmp_path, 'second', resume_from=str(tmp_path / 'iter_4.pth'))
    assert _em_hook(second).num_updates == 0
    # loads through torch's weights_only loader: importing clap_plugin allow-lists what mmengine pickles
    second.train()
    restored = _em_hook(second).state_dict()
    assert torch.equal(restored['buffer'], saved['buffer'])
    for key in ('buffer_pos', 'buffer_filled', 'num_updates', 'num_reseeded'):
        assert restored[key] == saved[key], key
    assert torch.equal(second.model.proto.prototypes, first.model.proto.prototypes)

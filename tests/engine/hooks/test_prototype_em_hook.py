"""Prototype learning: no collapse on realistic embeddings, freeze without touching the optimizer state,
re-seeding from hard counts, identical ranks, logging, checkpoint state."""
import os
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import nn

import clap_plugin  # noqa: F401
from clap_plugin.engine.hooks import PrototypeEMHook
from clap_plugin.models.prototypes import GramRegularizer, PrototypeState, gram_off_diagonal_mean
from clap_plugin.models.prototypes.swapped_prototype_loss import hard_perplexity, prototype_terms
from tests.helpers.gloo import run_gloo

pytestmark = pytest.mark.usefixtures('mmdet3d_default_scope')  # build in the mmdet3d registry scope


def realistic_embeddings(n_clusters=16, per=64, d=32, common=0.56, identical_share=0.3, seed=0):
    """Projection-head-like unit embeddings of two modalities: clusters that share a mean component, plus a
    block of identical rows (cells that all look alike), and their cluster labels (-1 for the block)."""
    g = torch.Generator().manual_seed(seed)
    mean = F.normalize(torch.randn(d, generator=g), dim=0)
    centres = F.normalize(torch.randn(n_clusters, d, generator=g), dim=-1)
    centres = F.normalize(common * mean + (1 - common) * centres, dim=-1)

    def draw():
        pts = centres[:, None, :] + 0.15 * torch.randn(n_clusters, per, d, generator=g)
        return F.normalize(pts.reshape(-1, d), dim=-1)

    lidar, camera = draw(), draw()  # the same clusters seen by both modalities
    labels = torch.arange(n_clusters).repeat_interleave(per)
    n_same = int(identical_share * lidar.shape[0])
    lidar[:n_same] = mean
    camera[:n_same] = mean
    labels[:n_same] = -1
    return lidar, camera, labels, centres


def soft_kmeans_m_steps(prototypes, emb, steps=20, temperature=0.1, momentum=0.5):
    """The alternating soft M-step this project used before (a reference that collapses here)."""
    k = F.normalize(prototypes.clone(), dim=-1)
    for _ in range(steps):
        a = torch.softmax(emb @ k.t() / temperature, dim=-1)
        k = F.normalize(momentum * k + (1 - momentum) * F.normalize(a.t() @ emb, dim=-1), dim=-1)
    return k


def test_gradient_prototypes_stay_spread_on_realistic_embeddings():
    lidar, camera, labels, centres = realistic_embeddings()
    n_k = 64
    init = F.normalize(torch.randn(n_k, lidar.shape[1], generator=torch.Generator().manual_seed(1)), dim=-1)
    # the old alternating soft M-step collapses on these embeddings: this is a case that matters
    assert float(gram_off_diagonal_mean(soft_kmeans_m_steps(init, torch.cat([lidar, camera])))) > 0.5
    protos = nn.Parameter(init.clone())
    opt = torch.optim.AdamW([protos], lr=1e-2, weight_decay=0.0)
    gram = GramRegularizer(loss_weight=0.1)
    hook = PrototypeEMHook(interval=1000)
    for _ in range(300):
        opt.zero_grad()
        terms = prototype_terms(lidar, camera, protos, temperature=0.1, em_temperature=0.1)
        (terms.loss_swap + terms.loss_em + gram(protos)).backward()
        opt.step()
        with torch.no_grad():
            protos.copy_(F.normalize(protos, dim=-1))
    assert float(gram_off_diagonal_mean(protos.detach())) <= 0.1
    final = prototype_terms(lidar, camera, protos.detach(), 0.1, 0.1)
    assert final.figures['proto_hard_ppl_lidar'] >= n_k / 4 and final.figures['proto_hard_ppl_camera'] >= n_k / 4
    # the two modalities agree far above chance, and each prototype's cells come from one cluster
    assert final.figures['proto_swap_agree'] > 5 * final.figures['proto_swap_chance']
    a, real = final.assignments['lidar'], labels >= 0
    joint = torch.zeros(n_k, int(labels.max()) + 1)
    joint.index_put_((a[real], labels[real]), torch.ones(int(real.sum())), accumulate=True)
    assert float(joint.max(dim=1).values.sum() / real.sum()) > 0.9  # purity
    assert hook.counts is None


def test_hard_perplexity_sees_a_collapse_that_soft_usage_hides():
    a = torch.zeros(1000, dtype=torch.long)  # every cell picks prototype 0
    assert float(hard_perplexity(a, 64)) == pytest.approx(1.0)
    assert float(hard_perplexity(torch.arange(64).repeat(10), 64)) == pytest.approx(64.0, rel=1e-5)


class _PairedCells(torch.utils.data.Dataset):

    def __len__(self):
        return 64

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(lidar=torch.randn(8, generator=g), camera=torch.randn(4, generator=g))


class _Capture:
    store: dict = {}


def _toy_runner(work_dir, name, max_iters=4, freeze_iters=1, interval=2, resume_from=None, optimizer='SGD'):
    from mmengine.hooks import Hook
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    from clap_plugin.models.prototypes import SwappedPrototypeLoss

    class ToyPretrainer(BaseModel):

        def __init__(self):
            super().__init__()
            self.proto = SwappedPrototypeLoss(lidar_channels=8, camera_channels=4, embed_dim=8, num_prototypes=6,
                                              hidden_channels=16, temperature=0.1)
            self.gram = GramRegularizer()

        def forward(self, lidar, camera, data_samples=None, mode='loss'):
            losses = self.proto(lidar, camera)
            losses['loss_gram'] = self.gram(self.proto.prototype_matrix())
            return losses

    class Snapshot(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            protos = runner.model.proto.prototypes
            state = runner.optim_wrapper.optimizer.state.get(protos, {})
            _Capture.store.setdefault(name, []).append(
                (protos.detach().clone(), {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}))

    torch.manual_seed(0)
    opt = dict(type='SGD', lr=0.1) if optimizer == 'SGD' else dict(type='AdamW', lr=0.05, weight_decay=0.0)
    return Runner(
        model=ToyPretrainer(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=_PairedCells(), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=16, num_workers=0, collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters), optim_wrapper=dict(optimizer=opt),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False)),
        custom_hooks=[dict(type=PrototypeEMHook, interval=interval, freeze_iters=freeze_iters), Snapshot()],
        resume=resume_from is not None, load_from=resume_from, default_scope='mmdet3d', log_level='WARNING')


def test_freeze_leaves_prototypes_and_their_optimizer_state_untouched(tmp_path):
    runner = _toy_runner(tmp_path, 'freeze', max_iters=5, freeze_iters=3, optimizer='AdamW')
    start = runner.model.proto.prototypes.detach().clone()
    head0 = runner.model.proto.lidar_proj[0].weight.detach().clone()
    runner.train()
    snaps = _Capture.store['freeze']
    for protos, state in snaps[:3]:
        assert torch.equal(protos, start)  # frozen: not moved
        assert state == {}  # and AdamW never saw a gradient for them: no moments, no step count
    protos, state = snaps[3]
    assert not torch.allclose(protos, start, atol=1e-4)  # free after the freeze
    assert int(state['step']) == 1 and float(state['exp_avg'].abs().sum()) > 0
    assert torch.allclose(protos.norm(dim=-1), torch.ones(6), atol=1e-6)  # re-normalised
    # the projection heads trained meanwhile
    assert not torch.allclose(runner.model.proto.lidar_proj[0].weight.detach(), head0)


def test_dead_prototypes_are_reseeded_from_hard_counts_and_lose_their_moments():
    g = torch.Generator().manual_seed(3)
    emb = F.normalize(torch.randn(40, 8, generator=g), dim=-1)
    protos = nn.Parameter(F.normalize(torch.randn(6, 8, generator=g), dim=-1))
    opt = torch.optim.AdamW([protos], lr=0.1)
    protos.grad = torch.randn(6, 8, generator=g)
    opt.step()
    before = protos.detach().clone()
    counts = torch.tensor([10, 0, 5, 0, 25, 1])
    hook = PrototypeEMHook(interval=1, reseed_noise=0.0)
    n = hook.reseed(protos, emb, counts, opt)
    assert n == 2
    for k in (1, 3):  # re-seeded exactly on an embedding, moments cleared
        assert float((emb @ protos[k].detach()).max()) == pytest.approx(1.0, abs=1e-6)
        assert float(opt.state[protos]['exp_avg'][k].abs().sum()) == 0.0
        assert float(opt.state[protos]['exp_avg_sq'][k].abs().sum()) == 0.0
    for k in (0, 2, 4, 5):  # the living ones are untouched, moments kept
        assert torch.equal(protos[k].detach(), before[k])
        assert float(opt.state[protos]['exp_avg'][k].abs().sum()) > 0


def _runner_stub(model, it):
    return SimpleNamespace(model=model, iter=it, message_hub=MessageHub.get_instance('proto_em_test'),
                           optim_wrapper=None)


class _Holder(nn.Module):

    def __init__(self, n, d, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.prototypes = nn.Parameter(F.normalize(torch.randn(n, d, generator=g), dim=-1))
        self.prototype_state = PrototypeState(self.prototypes)


def _hook_worker(rank, world, out_dir):
    model = _Holder(6, 8, seed=0)
    hook = PrototypeEMHook(interval=2)
    g = torch.Generator().manual_seed(10 + rank)  # different data on each rank
    for it in range(4):
        emb = F.normalize(torch.randn(16, 8, generator=g), dim=-1)
        model.prototype_state.embeddings = dict(lidar=emb)
        model.prototype_state.assignments = dict(lidar=torch.full((16, ), rank, dtype=torch.long))  # 4 dead
        hook.before_train_iter(_runner_stub(model, it), it)
        hook.after_train_iter(_runner_stub(model, it), it)
    torch.save(dict(k=model.prototypes.detach(), reseeded=hook.num_reseeded), os.path.join(out_dir, f'k{rank}.pth'))
    # ranks that disagree are caught
    with torch.no_grad():
        model.prototypes.add_(0.1 * rank)
    try:
        hook._check_identical(model.prototypes.data)
        caught = False
    except RuntimeError:
        caught = True
    torch.save(caught, os.path.join(out_dir, f'caught{rank}.pth'))


def test_two_ranks_reseed_identically(tmp_path):
    run_gloo(_hook_worker, 2, str(tmp_path))
    r0, r1 = (torch.load(tmp_path / f'k{r}.pth') for r in range(2))
    assert torch.equal(r0['k'], r1['k'])
    assert r0['reseeded'] == r1['reseeded'] == 8  # 4 dead prototypes at each of 2 checks (counts all-reduced)
    assert all(torch.load(tmp_path / f'caught{r}.pth') for r in range(2))


def test_state_survives_checkpoint_round_trip(tmp_path):
    hook = PrototypeEMHook(interval=5)
    hook.count(dict(lidar=torch.tensor([0, 1, 1]), camera=torch.tensor([2])), 4)
    hook.num_updates, hook.num_reseeded = 3, 7
    ckpt = {}
    hook.before_save_checkpoint(None, ckpt)
    torch.save(ckpt, tmp_path / 'c.pth')
    loaded = torch.load(tmp_path / 'c.pth')  # weights_only=True (torch default) must accept the state
    fresh = PrototypeEMHook(interval=5)
    fresh.after_load_checkpoint(None, loaded)
    assert torch.equal(fresh.counts, torch.tensor([1, 2, 1, 0]))
    assert (fresh.num_updates, fresh.num_reseeded) == (3, 7)
    with pytest.raises(KeyError, match='lacks'):
        fresh.load_state_dict(dict(buffer=None))


def test_runner_save_and_resume_restore_the_hook_state(tmp_path):
    first = _toy_runner(tmp_path, 'first', max_iters=4, freeze_iters=1, interval=2)
    first.train()
    hook = next(h for h in first.hooks if isinstance(h, PrototypeEMHook))
    saved = hook.state_dict()
    assert saved['num_updates'] == 2
    hub = first.message_hub
    for key in ('train/proto_dead', 'train/proto_interval_ppl', 'train/proto_gram_offdiag'):
        assert key in hub.log_scalars, key
    second = _toy_runner(tmp_path, 'second', max_iters=4, resume_from=str(tmp_path / 'iter_4.pth'))
    second.train()
    restored = next(h for h in second.hooks if isinstance(h, PrototypeEMHook)).state_dict()
    assert restored['num_updates'] == saved['num_updates'] and restored['num_reseeded'] == saved['num_reseeded']
    assert torch.equal(second.model.proto.prototypes, first.model.proto.prototypes)

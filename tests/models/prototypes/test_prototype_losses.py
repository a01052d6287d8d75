"""Sinkhorn codes, swapped prototype loss and Gram regulariser."""
import math
import os

import pytest
import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS

import clap_plugin  # noqa: F401
from clap_plugin.models.prototypes import gram_off_diagonal_mean, sinkhorn_knopp
from tests.helpers.gloo import run_gloo

pytestmark = pytest.mark.usefixtures('mmdet3d_default_scope')  # build in the mmdet3d registry scope


def naive_sinkhorn(scores, epsilon, iterations):
    """Loop-by-loop reference: alternate prototype (column) and sample (row) normalisation."""
    b, k = scores.shape
    q = [[math.exp(float(scores[i, j]) / epsilon) for j in range(k)] for i in range(b)]
    total = sum(sum(row) for row in q)
    q = [[v / total for v in row] for row in q]
    for _ in range(iterations):
        for j in range(k):
            col = sum(q[i][j] for i in range(b))
            for i in range(b):
                q[i][j] /= col * k
        for i in range(b):
            row = sum(q[i])
            q[i] = [v / (row * b) for v in q[i]]
    return torch.tensor(q, dtype=torch.float64) * b


def _scores(b, k, d, seed):
    g = torch.Generator().manual_seed(seed)
    e = F.normalize(torch.randn(b, d, generator=g, dtype=torch.float64), dim=-1)
    p = F.normalize(torch.randn(k, d, generator=g, dtype=torch.float64), dim=-1)
    return e @ p.t()


def test_sinkhorn_marginals_and_naive_reference():
    s = _scores(4096, 512, 128, 0)
    q = sinkhorn_knopp(s, epsilon=0.05, iterations=3)
    assert torch.allclose(q.sum(1), torch.ones(4096, dtype=torch.float64), atol=1e-9)
    col = q.sum(0)
    assert torch.all((col / (4096 / 512) - 1).abs() < 0.05), (col / 8).aminmax()
    small = _scores(40, 12, 8, 1)
    assert torch.allclose(sinkhorn_knopp(small, 0.05, 3), naive_sinkhorn(small, 0.05, 3), atol=1e-6)
    assert torch.allclose(sinkhorn_knopp(small, 0.2, 5), naive_sinkhorn(small, 0.2, 5), atol=1e-6)


def _sinkhorn_worker(rank, world, scores, out_dir):
    part = scores.chunk(world)[rank]
    torch.save(sinkhorn_knopp(part, 0.05, 3), os.path.join(out_dir, f'q{rank}.pth'))


def test_sinkhorn_two_gloo_ranks_equal_one_process(tmp_path):
    s = _scores(300, 32, 16, 2)
    run_gloo(_sinkhorn_worker, 2, s, str(tmp_path))
    q_dist = torch.cat([torch.load(tmp_path / f'q{r}.pth') for r in range(2)])
    q_one = sinkhorn_knopp(s, 0.05, 3)
    assert (q_dist - q_one).abs().max() < 1e-6
    # and differs from two independent local normalisations (the global sums matter)
    q_local = torch.cat([sinkhorn_knopp(p, 0.05, 3) for p in s.chunk(2)])
    assert (q_local - q_one).abs().max() > 1e-4


def _swap_loss(**kw):
    cfg = dict(type='SwappedPrototypeLoss', lidar_channels=12, camera_channels=6, embed_dim=16, num_prototypes=24,
               hidden_channels=32, temperature=0.1)
    cfg.update(kw)
    return MODELS.build(cfg)


def test_swap_loss_lower_when_modalities_agree():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    loss = _swap_loss(proj_layers=1, camera_channels=16, lidar_channels=16).eval()
    # both projections identical: paired cells get identical embeddings
    loss.camera_proj.load_state_dict(loss.lidar_proj.state_dict())
    feats = torch.randn(256, 16, generator=g)
    agree = loss(feats, feats)
    shuffled = loss(feats, feats[torch.randperm(256, generator=g)])
    assert agree['loss_swap'] < shuffled['loss_swap'] - 0.1
    assert {k for k in agree if k.startswith('loss')} == {'loss_swap', 'loss_em'}
    # the hard-assignment agreement sees the pairing; shuffled pairs agree at about the chance level
    assert agree['proto_swap_agree'] > 0.5
    assert shuffled['proto_swap_agree'] < 3 * shuffled['proto_swap_chance'] + 0.05
    assert set(loss.prototype_state.embeddings) == {'lidar', 'camera'}
    assert not loss.prototype_state.embeddings['lidar'].requires_grad


def test_temperature_sets_the_range_of_the_swap_term():
    """On cosine scores tau = 1 leaves the swap cross-entropy about one nat between chance and a perfect
    match; tau = 0.1 gives it its full range (why the CPU benchmarks use SwAV's 0.1)."""
    from clap_plugin.models.prototypes.swapped_prototype_loss import prototype_terms
    g = torch.Generator().manual_seed(0)
    n_k, d = 64, 32
    protos = torch.nn.functional.normalize(torch.randn(n_k, d, generator=g), dim=-1)
    idx = torch.arange(n_k).repeat(4)
    perfect = protos[idx]  # each cell sits on a prototype, both modalities alike
    rand = torch.nn.functional.normalize(torch.randn(idx.numel(), d, generator=g), dim=-1)
    span = {}
    for tau in (1.0, 0.1):
        hi = prototype_terms(rand, rand[torch.randperm(idx.numel(), generator=g)], protos, tau, tau).loss_swap
        lo = prototype_terms(perfect, perfect, protos, tau, tau).loss_swap
        span[tau] = float(hi - lo) / 2  # per direction
    assert span[1.0] < 1.2
    assert span[0.1] > 3.0


def test_swap_loss_gradients_reach_heads_and_prototypes():
    torch.manual_seed(1)
    loss = _swap_loss().train()
    out = loss(torch.randn(64, 12), torch.randn(64, 6))
    (out['loss_swap'] + out['loss_em']).backward()
    for name, p in loss.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_em_term_is_the_assignment_entropy():
    torch.manual_seed(2)
    loss = _swap_loss(loss_em_weight=1.0, em_temperature=0.5).eval()
    lid, cam = torch.randn(32, 12), torch.randn(32, 6)
    out = loss(lid, cam)
    emb = loss.embed(lid, cam)
    k = F.normalize(loss.prototypes, dim=-1)
    ent = [torch.distributions.Categorical(logits=emb[m] @ k.t() / 0.5).entropy().mean() for m in emb]
    assert torch.allclose(out['loss_em'], 0.5 * (ent[0] + ent[1]), atol=1e-6)


def test_gram_simplex_collapse_and_gradient():
    n = 6
    simplex = torch.eye(n, dtype=torch.float64) - 1.0 / n  # regular simplex centred at 0
    assert torch.allclose(gram_off_diagonal_mean(simplex), torch.tensor(-1 / (n - 1), dtype=torch.float64))
    collapsed = torch.ones(n, 4, dtype=torch.float64) * torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    assert torch.allclose(gram_off_diagonal_mean(collapsed), torch.tensor(1.0, dtype=torch.float64))
    # reference: explicit Gram matrix
    r = torch.randn(10, 5, dtype=torch.float64)
    kn = F.normalize(r, dim=-1)
    g = kn @ kn.t()
    assert torch.allclose(gram_off_diagonal_mean(r), (g.sum() - g.trace()) / 90)
    # a gradient step on nearly collapsed prototypes spreads them apart
    reg = MODELS.build(dict(type='GramRegularizer', loss_weight=1.0))
    k = (torch.tensor([[1.0, 0.0, 0.0]]) + 0.01 * torch.randn(8, 3)).requires_grad_(True)
    before = float(reg(k))
    reg(k).backward()
    with torch.no_grad():
        k2 = k - 0.5 * k.grad / k.grad.norm()
    assert float(reg(k2)) < before - 1e-3
    assert float(gram_off_diagonal_mean(k2)) < float(gram_off_diagonal_mean(k.detach()))

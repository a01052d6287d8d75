"""CMCR: the unified codebook (nearest-code assignment, no usage collapse on a toy mixture), the occupancy
targets on an analytic plane, the masked-patch loss and the decorrelation against their definitions, and a
short training run of the tiny config."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from projects.CMCR.cmcr import UnifiedCodebook, decorrelation_loss, masked_patch_loss, occupancy_queries

from _baseline_helpers import export_and_check_finetune_keys, run_tiny


def test_codebook_assigns_each_feature_to_its_nearest_code():
    torch.manual_seed(0)
    cb = UnifiedCodebook(num_codes=40, dim=6)
    cb.codes.copy_(torch.randn(40, 6))
    z = torch.randn(500, 6, requires_grad=True)
    zd = z.detach()
    cb.eval()
    out = cb(z)
    brute = torch.tensor([min(range(40), key=lambda k: float(((zd[i] - cb.codes[k]) ** 2).sum()))
                          for i in range(500)])
    assert torch.equal(out['indices'], brute)
    torch.testing.assert_close(out['quantized'], cb.codes[brute])
    # straight-through: the gradient reaches the features unchanged
    out['quantized'].sum().backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))
    torch.testing.assert_close(out['loss_commit'], F.mse_loss(z.detach(), cb.codes[brute]))


def test_codebook_usage_does_not_collapse_on_a_toy_mixture():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(16, 8, generator=g), dim=1)
    cb = UnifiedCodebook(num_codes=32, dim=8, decay=0.9)
    cb.train()
    before = cb.codes.clone()
    for _ in range(200):
        lab = torch.randint(0, 16, (256, ), generator=g)
        cb(centres[lab] + 0.05 * torch.randn(256, 8, generator=g))
    assert not torch.equal(before, cb.codes)
    cb.eval()
    lab = torch.randint(0, 16, (4096, ), generator=g)
    z = centres[lab] + 0.05 * torch.randn(4096, 8, generator=g)
    out = cb(z)
    used = torch.unique(out['indices'])
    assert used.numel() >= 16 and out['perplexity'] > 12
    # codes separate the components: no code is shared by two of them, and each is close to its features
    owner = {}
    for c, k in zip(lab.tolist(), out['indices'].tolist()):
        assert owner.setdefault(k, c) == c
    assert (cb.codes[out['indices']] - z).norm(dim=1).mean() < 0.25


def test_occupancy_targets_on_an_analytic_plane():
    # the ground plane z = -1.8 seen from a LiDAR at the origin: behind the surface (below the plane) is
    # occupied, in front of it (between the sensor and the plane) is free
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(2000, 2, generator=g, dtype=torch.float64) * 80 - 40
    xy = xy[xy.norm(dim=1) > 3]
    pts = torch.cat([xy, torch.full((xy.shape[0], 1), -1.8, dtype=torch.float64)], 1)
    q = occupancy_queries(pts, torch.zeros(3, dtype=torch.float64), 5000, 0.5, generator=g)
    below = q['queries'][:, 2] < -1.8
    assert torch.equal(q['targets'].bool(), below | (q['offsets'] == 0))
    assert 0.3 < float(q['targets'].mean()) < 0.7
    # queries lie on the ray through their point, within max_offset of it
    d = q['queries'] - pts[q['point_idx']]
    assert float(d.norm(dim=1).max()) <= 0.5 + 1e-9
    ray = F.normalize(pts[q['point_idx']], dim=1)
    torch.testing.assert_close((d * ray).sum(1), q['offsets'])
    # an offset sensor: a wall x = 10 seen from (0, 0, 2); behind the wall is x > 10
    wall = torch.stack([torch.full((500, ), 10.0, dtype=torch.float64),
                        torch.rand(500, generator=g, dtype=torch.float64) * 20 - 10,
                        torch.rand(500, generator=g, dtype=torch.float64) * 3], 1)
    q = occupancy_queries(wall, torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64), 3000, 0.3, generator=g)
    assert torch.equal(q['targets'].bool(), q['queries'][:, 0] >= 10.0)


def test_masked_patch_loss_counts_masked_patches_only():
    pred = torch.zeros(2, 3, 8, 12)
    target = torch.zeros(2, 3, 8, 12)
    mask = torch.zeros(2, 2, 3, dtype=torch.bool)
    mask[0, 1, 2] = True
    target[0, :, 4:8, 8:12] = 2.0  # the masked patch: error 4 per value
    target[1] = 100.0  # unmasked: ignored
    assert masked_patch_loss(pred, target, mask, 4).item() == pytest.approx(4.0)


def test_decorrelation_loss_definition():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=g, dtype=torch.float64)
    b = torch.randn(4000, 2, generator=g, dtype=torch.float64)
    assert decorrelation_loss(a, b).item() < 1e-3
    c = torch.cat([2 * a[:, :1] + 1, b[:, :1]], 1)  # first specific channel = shared channel 0
    ref = np.mean(np.corrcoef(a.numpy().T, c.numpy().T)[:3, 3:] ** 2)
    assert decorrelation_loss(a, c).item() == pytest.approx(ref, rel=1e-3)
    assert decorrelation_loss(a, c).item() > 1 / 6 - 0.01


def test_cmcr_tiny_config_trains(synthetic_nus, tmp_path):
    records, start, end, runner = run_tiny('projects/CMCR/configs/cmcr_pretrain_nus_cpu-tiny.py', synthetic_nus,
                                           tmp_path, iters=2)
    assert type(runner.model).__name__ == 'CMCRPretrainer'
    keys = ('loss_mim', 'loss_occ', 'loss_contrast', 'loss_commit', 'loss_code', 'loss_decorr')
    for r in records:
        assert all(np.isfinite(r[k]) for k in keys)
        assert r['code_perplexity'] > 2  # the shared codebook is used, not collapsed onto one code
    for prefix in ('pts_middle_encoder.', 'img_backbone.', 'img_neck.', 'point_shared.', 'pixel_specific.',
                   'mim_decoder.', 'occ_head.', 'codebook.codes'):
        assert any(not torch.equal(start[k], end[k]) for k in start if k.startswith(prefix)), prefix
    export_and_check_finetune_keys(osp.join(str(tmp_path), 'iter_2.pth'), str(tmp_path / 'enc.pth'),
                                   ('codebook', 'point_shared', 'point_specific', 'pixel_shared', 'pixel_specific',
                                    'mim_decoder', 'occ_head'), ('img_backbone', 'img_neck', 'pts_middle_encoder'))

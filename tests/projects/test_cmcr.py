"""CMCR: the unified codebook (nearest-code assignment, no usage collapse on a toy mixture), the occupancy
targets on an analytic plane, the masked-patch loss and the decorrelation against their definitions, and a
short training run of the tiny config."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from projects.CMCR.cmcr import UnifiedCodebook, decorrelation_loss, masked_patch_loss, occupancy_queries
from tests.helpers.baselines import ROOT, export_and_check_finetune_keys, run_tiny, write_teacher


def test_codebook_assigns_each_feature_to_its_nearest_code():
    torch.manual_seed(0)
    cb = UnifiedCodebook(num_codes=40, dim=6)
    cb.codes.copy_(torch.randn(40, 6))
    z = torch.randn(500, 6, requires_grad=True)
    zd = z.detach()
    out = cb.quantize(z)
    brute = torch.tensor([min(range(40), key=lambda k: float(((zd[i] - cb.codes[k]) ** 2).sum()))
                          for i in range(500)])
    assert torch.equal(out['indices'], brute)
    torch.testing.assert_close(out['quantized'], cb.codes[brute])
    # straight-through: the gradient reaches the features unchanged
    out['quantized'].sum().backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))


def test_cross_modal_ema_moves_both_codes_to_the_pair_mean_and_renormalises():
    cb = UnifiedCodebook(num_codes=4, dim=2, decay=0.5)
    cb.codes.copy_(torch.tensor([[1.0, 0], [0, 1.0], [-1.0, 0], [0, -1.0]]))
    cb.ema_sum.copy_(cb.codes)
    cb.ema_count.fill_(1.0)
    p = F.normalize(torch.tensor([[1.0, 0.2]]), dim=1)  # nearest code 0
    x = F.normalize(torch.tensor([[0.1, 1.0]]), dim=1)  # nearest code 1
    cb.update_cross(p, x)
    mean = 0.5 * (p + x)[0]
    # code 0: EMA of (1, 0) and the pair mean, then back on the unit sphere; the same for code 1
    for k, e in ((0, torch.tensor([1.0, 0])), (1, torch.tensor([0, 1.0]))):
        n = cb.ema_count.sum()
        smoothed = (cb.ema_count[k] + cb.eps) / (n + 4 * cb.eps) * n
        torch.testing.assert_close(cb.codes[k], F.normalize((0.5 * e + 0.5 * mean) / smoothed, dim=0))
    torch.testing.assert_close(cb.codes.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(cb.codes[2:], torch.tensor([[-1.0, 0], [0, -1.0]]))  # unused codes stay put


def test_code_matching_and_cross_commitment_against_their_definitions():
    from projects.CMCR.cmcr.losses import code_matching_loss, cross_commitment_loss
    g = torch.Generator().manual_seed(0)
    dp, dx = torch.rand(5, 7, generator=g, dtype=torch.float64), torch.rand(5, 7, generator=g, dtype=torch.float64)
    P, V = torch.softmax(-dp, 1), torch.softmax(-dx, 1)
    total = 0.0
    for i in range(5):
        s = [float((P[i] * V[j].log()).sum() + (V[i] * P[j].log()).sum()) / 0.5 for j in range(5)]
        total += -(s[i] - np.log(np.sum(np.exp(s))))
    assert code_matching_loss(dp, dx, 0.5).item() == pytest.approx(total / 5, rel=1e-9)
    # matched code distributions score lower than mismatched ones
    assert code_matching_loss(dp, dp, 0.1) < code_matching_loss(dp, dp.roll(1, 0), 0.1)
    p, x = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    ep, ex = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    ref = (2 * ((p - ep) ** 2).mean() + ((p - ex) ** 2).mean() + 2 * ((x - ex) ** 2).mean() + ((x - ep) ** 2).mean())
    torch.testing.assert_close(cross_commitment_loss(p, x, ep, ex), ref)


def _codebook_ranks(rank, world, out_dir):
    torch.manual_seed(0)  # the same initial codes on both ranks (as DDP's initial broadcast makes them)
    cb = UnifiedCodebook(num_codes=16, dim=4, decay=0.9, dead_threshold=0.5)
    g = torch.Generator().manual_seed(100 + rank)  # each rank sees different pairs
    for _ in range(5):
        p = F.normalize(torch.randn(64, 4, generator=g), dim=1)
        cb.update_cross(p, F.normalize(p + 0.1 * torch.randn(64, 4, generator=g), dim=1))
    torch.save({k: v.clone() for k, v in cb.state_dict().items()}, osp.join(out_dir, f'rank{rank}.pth'))


def test_codebook_is_identical_on_two_gloo_ranks_after_updates(tmp_path):
    from tests.helpers.gloo import run_gloo
    run_gloo(_codebook_ranks, 2, str(tmp_path))
    a, b = (torch.load(str(tmp_path / f'rank{r}.pth')) for r in (0, 1))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # and it learnt from both ranks' pairs: a single-process run on rank 0's pairs alone differs
    torch.manual_seed(0)
    solo = UnifiedCodebook(num_codes=16, dim=4, decay=0.9, dead_threshold=0.5)
    g = torch.Generator().manual_seed(100)
    for _ in range(5):
        p = F.normalize(torch.randn(64, 4, generator=g), dim=1)
        solo.update_cross(p, F.normalize(p + 0.1 * torch.randn(64, 4, generator=g), dim=1))
    assert not torch.equal(solo.codes, a['codes'])


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


TINY = 'projects/CMCR/configs/cmcr_pretrain_nus_cpu-tiny.py'


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('cmcr_teacher') / 'teacher_2d.pth')
    write_teacher(path)
    return path


def test_cmcr_refuses_to_build_without_a_teacher():
    from mmdet3d.registry import MODELS
    from mmengine.config import Config

    from clap_plugin.models.contrastive import TeacherError
    cfg = Config.fromfile(osp.join(ROOT, TINY))
    with pytest.raises(TeacherError, match=r'CMCR distils .* model\.teacher_checkpoint=PATH'):
        MODELS.build(cfg.model)


def test_pairs_on_masked_patches_are_dropped():
    import types

    from clap_plugin.models.pretrain.masking import mask_image_patches
    from projects.CMCR.cmcr import CMCRPretrainer
    g = torch.Generator().manual_seed(0)
    imgs = torch.ones(2, 3, 3, 32, 48)  # B = 2, N = 3 images of 32 x 48, patches of 16: 2 x 3 per image
    masked, patch_mask = mask_image_patches(imgs, 16, 0.5, generator=g)
    n = 4000
    pairs = dict(img_idx=torch.randint(0, 6, (n, ), generator=g),
                 uv=torch.rand(n, 2, generator=g) * torch.tensor([48.0, 32.0]), depth=torch.arange(n).float())
    out = CMCRPretrainer.visible_pairs(types.SimpleNamespace(mim_patch_size=16), pairs, patch_mask)
    flat = masked.flatten(0, 1)
    # a kept pair's pixel is unmasked in the network input, a dropped pair's pixel is masked
    val = flat[out['img_idx'], 0, out['uv'][:, 1].long(), out['uv'][:, 0].long()]
    assert bool((val == 1).all()) and 0.4 * n < out['img_idx'].numel() < 0.6 * n
    dropped = torch.ones(n, dtype=torch.bool)
    dropped[out['depth'].long()] = False
    val = flat[pairs['img_idx'][dropped], 0, pairs['uv'][dropped, 1].long(), pairs['uv'][dropped, 0].long()]
    assert bool((val == 0).all())


def test_cmcr_decoders_read_the_quantised_codes(synthetic_nus, tmp_path, teacher_ckpt):
    _, _, _, runner = run_tiny(TINY, synthetic_nus, tmp_path, iters=1,
                               cfg_options={'model.teacher_checkpoint': teacher_ckpt})
    model = runner.model
    data = model.data_preprocessor(next(iter(runner.train_dataloader)), training=True)
    seen = {}

    def keep(name):
        def hook(module, args, output=None):
            seen.setdefault(name, []).append((args[0].detach().clone(),
                                              None if output is None else output.detach().clone()))
        return hook

    handles = [model.mim_decoder.register_forward_pre_hook(keep('mim_in')),
               model.occ_head.register_forward_pre_hook(keep('occ_in')),
               model.pixel_specific.register_forward_hook(keep('pix_spec')),
               model.pixel_shared.register_forward_hook(keep('pix_shared')),
               model.point_specific.register_forward_hook(keep('pt_spec')),
               model.point_shared.register_forward_hook(keep('pt_shared'))]
    codes_before = model.codebook.codes.clone()
    with torch.no_grad():
        model.loss(data['inputs'], data['data_samples'])
    for h in handles:
        h.remove()
    assert not torch.equal(codes_before, model.codebook.codes)  # the EMA step ran after the decoders
    dim = model.codebook.dim

    def expected(specific, shared):
        z = F.normalize(shared, dim=1)
        d = torch.cdist(z, codes_before)
        return specific + codes_before[d.argmin(1)]

    # MIM decoder input = pixel_specific + nearest code of normalised pixel_shared, at every pixel
    mim_in = seen['mim_in'][0][0]
    spec = seen['pix_spec'][0][1].permute(0, 2, 3, 1).reshape(-1, dim)
    shared = seen['pix_shared'][0][1].permute(0, 2, 3, 1).reshape(-1, dim)
    torch.testing.assert_close(mim_in.permute(0, 2, 3, 1).reshape(-1, dim), expected(spec, shared))
    assert (mim_in.permute(0, 2, 3, 1).reshape(-1, dim) - spec).abs().sum(1).min() > 0.1  # codes were added
    # occupancy head input = point_specific + nearest code of normalised point_shared (then the height)
    occ_in = seen['occ_in'][0][0]
    torch.testing.assert_close(occ_in[:, :dim], expected(seen['pt_spec'][0][1], seen['pt_shared'][0][1]))


def test_cmcr_tiny_config_trains(synthetic_nus, tmp_path, teacher_ckpt):
    records, start, end, runner = run_tiny(TINY, synthetic_nus, tmp_path, iters=2,
                                           cfg_options={'model.teacher_checkpoint': teacher_ckpt})
    assert type(runner.model).__name__ == 'CMCRPretrainer'
    keys = ('loss_mim', 'loss_occ', 'loss_contrast', 'loss_commit', 'loss_code', 'loss_decorr')
    for r in records:
        assert all(np.isfinite(r[k]) for k in keys)
        assert r['code_perplexity'] > 2  # the shared codebook is used, not collapsed onto one code
        assert 100 < r['cmcr_pairs'] <= 1024
    for prefix in ('pts_middle_encoder.', 'point_shared.', 'pixel_shared.', 'pixel_specific.', 'mim_decoder.',
                   'occ_head.', 'codebook.codes'):
        assert any(not torch.equal(start[k], end[k]) for k in start if k.startswith(prefix)), prefix
    # the teacher is frozen; the image backbone is not used
    for prefix in ('teacher.', 'img_backbone.', 'img_neck.'):
        assert all(torch.equal(start[k], end[k]) for k in start if k.startswith(prefix)), prefix
    export_and_check_finetune_keys(osp.join(str(tmp_path), 'iter_2.pth'), str(tmp_path / 'enc.pth'),
                                   ('teacher', 'codebook', 'point_shared', 'point_specific', 'pixel_shared',
                                    'pixel_specific', 'mim_decoder', 'occ_head'), ('pts_middle_encoder', ))

"""SimIPU: the Hungarian matching recovers a known permutation after a known augmentation, is one-to-one and
respects its threshold, the second view's transform is a similarity within its ranges, and a short training run
of the tiny config (with export to the fine-tune detector's encoder weights)."""
import math
import os.path as osp

import numpy as np
import pytest
import torch

from projects.SimIPU.simipu import match_keypoints, random_view_transform, transform_points
from tests.helpers.baselines import export_and_check_finetune_keys, run_tiny


def test_matching_recovers_known_permutation_after_known_augmentation():
    g = torch.Generator().manual_seed(3)
    pts = torch.rand(300, 3, generator=g, dtype=torch.float64) * torch.tensor([60.0, 60.0, 4.0],
                                                                               dtype=torch.float64) - 30
    mat = random_view_transform((-0.8, 0.8), (0.9, 1.1), 0.5, 1.0, generator=g, dtype=torch.float64)
    assert torch.det(mat[:3, :3]) < 0  # flip_prob=1: a mirrored view
    perm = torch.randperm(300, generator=g)
    view2 = transform_points(pts + 0.01 * torch.randn(300, 3, generator=g, dtype=torch.float64), mat)[perm]
    # matching in the view-2 frame directly does not recover it; after undoing the transform it does
    back = transform_points(view2, torch.inverse(mat))
    ia, ib = match_keypoints(pts, back)
    assert ia.numel() == 300
    recovered = torch.empty(300, dtype=torch.long)
    recovered[ib] = ia  # view2[j] is pts[perm[j]]
    assert torch.equal(recovered, perm)
    ia_raw, ib_raw = match_keypoints(pts, view2)
    assert not torch.equal(ia_raw[torch.argsort(ib_raw)], perm)


def test_matching_is_one_to_one_and_respects_the_threshold():
    a = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [5.0, 5, 0]])
    b = torch.tensor([[0.9, 0, 0], [0.05, 0, 0], [20.0, 0, 0], [0.5, 0, 0]])
    ia, ib = match_keypoints(a, b, max_distance=0.2)
    assert sorted(zip(ia.tolist(), ib.tolist())) == [(0, 1), (1, 0)]
    ia, ib = match_keypoints(a, b)
    assert len(set(ia.tolist())) == 3 and len(set(ib.tolist())) == 3


def test_random_view_transform_is_a_similarity_in_range():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        m = random_view_transform((-0.3, 0.3), (0.9, 1.1), 0.2, 0.5, generator=g, dtype=torch.float64)
        r = m[:3, :3]
        s = torch.linalg.svdvals(r)
        assert torch.allclose(s, s[0].expand(3)) and 0.9 <= float(s[0]) <= 1.1
        assert m[2, 2] == pytest.approx(float(s[0]))  # rotation about z only
        angle = math.atan2(float(r[1, 0]), float(r[0, 0])) if torch.det(r) > 0 else None
        if angle is not None:
            assert -0.3 - 1e-9 <= angle <= 0.3 + 1e-9


def _clustered_cloud(g, n_side=8, per=30, spacing=9.0):
    """(P, 5) points in n_side^2 tight clusters (sigma 5 cm) on a grid ``spacing`` m apart, and their centres."""
    ax = (torch.arange(n_side, dtype=torch.float64) - (n_side - 1) / 2) * spacing
    cx, cy = torch.meshgrid(ax, ax, indexing='ij')
    centres = torch.stack([cx.flatten(), cy.flatten(), torch.rand(n_side ** 2, generator=g, dtype=torch.float64)
                           - 0.5], 1)
    pts = centres.repeat_interleave(per, 0) + 0.05 * torch.randn(n_side ** 2 * per, 3, generator=g,
                                                                 dtype=torch.float64)
    return torch.cat([pts, torch.zeros(pts.shape[0], 2, dtype=torch.float64)], 1), centres


def _matcher(num_keypoints):
    """The attributes SimIPUPretrainer.keypoint_matches reads, without building the encoders."""
    import types
    return types.SimpleNamespace(point_cloud_range=[-54.0, -54.0, -5.0, 54.0, 54.0, 3.0], keyframe_dim=4,
                                 num_keypoints=num_keypoints, match_threshold=float('inf'))


def test_fps_keypoint_sets_of_two_views_are_independent_and_matched_after_undoing_the_augmentation():
    from projects.SimIPU.simipu import SimIPUPretrainer, farthest_point_sampling
    g = torch.Generator().manual_seed(4)
    torch.manual_seed(4)
    pts, centres = _clustered_cloud(g)
    # farthest-point sampling with as many keypoints as clusters takes one point of every cluster
    idx = farthest_point_sampling(pts[:, :3], 64)
    assert len({int(i) // 30 for i in idx}) == 64
    # view 2: a different 70 % of the points under a known rotation of 80 deg, scale 1.2 and a mirror
    keep = torch.randperm(pts.shape[0], generator=g)[:int(0.7 * pts.shape[0])]
    c, s_ = math.cos(math.radians(80)), math.sin(math.radians(80))
    mat = torch.eye(4, dtype=torch.float64)
    mat[:3, :3] = 1.2 * torch.tensor([[c, -s_, 0], [s_, c, 0], [0, 0, 1.0]], dtype=torch.float64)
    mat[:3, 1] = -mat[:3, 1]
    view2 = transform_points(pts[keep], mat)
    m = SimIPUPretrainer.keypoint_matches(_matcher(64), pts, view2, mat)
    assert m['xyz1'].shape[0] == 64
    back = transform_points(m['xyz2'], torch.inverse(mat))

    def cluster(x):
        return torch.cdist(x[:, :2], centres[:, :2]).argmin(1)

    # every keypoint of view 1 is matched to the keypoint of view 2 in the same cluster ...
    assert torch.equal(cluster(m['xyz1']), cluster(back))
    assert len(set(cluster(m['xyz1']).tolist())) == 64
    # ... although the two sets are different points (independent sampling), a few cm apart
    assert (m['distance'] > 1e-6).float().mean() > 0.9 and float(m['distance'].max()) < 0.5
    torch.testing.assert_close(m['distance'], (m['xyz1'] - back).norm(dim=1))
    # without undoing the augmentation the matching is wrong
    wrong = SimIPUPretrainer.keypoint_matches(_matcher(64), pts, view2, torch.eye(4, dtype=torch.float64))
    same = cluster(wrong['xyz1']) == cluster(transform_points(wrong['xyz2'], torch.inverse(mat)))
    assert same.float().mean() < 0.3


TINY = 'projects/SimIPU/configs/simipu_pretrain_nus_cpu-tiny.py'


def test_inter_modal_loss_gives_the_point_branch_no_gradient(synthetic_nus, tmp_path):
    _, _, _, runner = run_tiny(TINY, synthetic_nus, tmp_path, iters=1)
    model = runner.model
    data = model.data_preprocessor(next(iter(runner.train_dataloader)), training=True)

    def grads(loss_name):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        model.loss(data['inputs'], data['data_samples'])[loss_name].backward()
        out = {}
        for prefix in ('pts_middle_encoder.', 'point_head.', 'intra_head.', 'image_head.', 'img_backbone.'):
            gs = [p.grad for n, p in model.named_parameters() if n.startswith(prefix)]
            out[prefix] = sum(float(g.abs().sum()) for g in gs if g is not None)
        return out

    assert model.point_stop_grad  # the default
    inter = grads('loss_inter')
    assert inter['pts_middle_encoder.'] == 0 and inter['point_head.'] == 0
    assert inter['image_head.'] > 0 and inter['img_backbone.'] > 0
    intra = grads('loss_intra')
    assert intra['pts_middle_encoder.'] > 0 and intra['intra_head.'] > 0 and intra['img_backbone.'] == 0
    model.point_stop_grad = False  # the co-training ablation: now the point side is trained by it
    inter = grads('loss_inter')
    assert inter['pts_middle_encoder.'] > 0 and inter['point_head.'] > 0


def test_simipu_tiny_config_trains_both_branches(synthetic_nus, tmp_path):
    records, start, end, runner = run_tiny(TINY, synthetic_nus, tmp_path, iters=2)
    assert type(runner.model).__name__ == 'SimIPUPretrainer'
    assert len(records) == 2
    for r in records:
        assert np.isfinite(r['loss_intra']) and np.isfinite(r['loss_inter'])
        # two independent FPS sets of 512 keypoints, all matched one-to-one, close after undoing the transform
        assert r['intra_matches'] == 512 and r['intra_match_dist'] < 3.0
    for prefix in ('pts_middle_encoder.', 'img_backbone.', 'img_neck.', 'intra_head.', 'image_head.'):
        assert any(not torch.equal(start[k], end[k]) for k in start if k.startswith(prefix)), prefix
    # the point head receives no gradient (stop-gradient target of the inter-modal loss): its weights stay
    params = {n for n, _ in runner.model.named_parameters()}
    assert all(torch.equal(start[k], end[k]) for k in start if k.startswith('point_head.') and k in params)
    export_and_check_finetune_keys(osp.join(str(tmp_path), 'iter_2.pth'), str(tmp_path / 'enc.pth'),
                                   ('point_head', 'intra_head', 'image_head'),
                                   ('img_backbone', 'img_neck', 'pts_middle_encoder'))

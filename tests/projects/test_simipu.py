"""SimIPU: the Hungarian matching recovers a known permutation after a known augmentation, is one-to-one and
respects its threshold, the second view's transform is a similarity within its ranges, and a short training run
of the tiny config (with export to the fine-tune detector's encoder weights)."""
import math
import os.path as osp

import numpy as np
import pytest
import torch

from projects.SimIPU.simipu import match_keypoints, random_view_transform, transform_points

from _baseline_helpers import export_and_check_finetune_keys, run_tiny


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


def test_simipu_tiny_config_trains_both_branches(synthetic_nus, tmp_path):
    records, start, end, runner = run_tiny('projects/SimIPU/configs/simipu_pretrain_nus_cpu-tiny.py',
                                           synthetic_nus, tmp_path, iters=2)
    assert type(runner.model).__name__ == 'SimIPUPretrainer'
    assert len(records) == 2
    for r in records:
        assert np.isfinite(r['loss_intra']) and np.isfinite(r['loss_inter'])
        # nearly every keypoint finds its partner: 10 % are dropped from the second view
        assert 0.7 * 512 <= r['intra_matches'] <= 512
    for prefix in ('pts_middle_encoder.', 'img_backbone.', 'img_neck.', 'point_head.', 'intra_head.',
                   'image_head.'):
        assert any(not torch.equal(start[k], end[k]) for k in start if k.startswith(prefix)), prefix
    export_and_check_finetune_keys(osp.join(str(tmp_path), 'iter_2.pth'), str(tmp_path / 'enc.pth'),
                                   ('point_head', 'intra_head', 'image_head'))

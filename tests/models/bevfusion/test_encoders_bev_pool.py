"""BEV pooling: the scatter-add version equals the naive per-point loop."""
import pytest
import torch

from clap_plugin.models.bevfusion import bev_pool, bev_pool_reference


def _random_case(n=600, c=5, batch=2, grid=(7, 6, 3), seed=0, dtype=torch.float32, integer_feats=False):
    gen = torch.Generator().manual_seed(seed)
    nx, ny, nz = grid
    # coordinates deliberately reach one cell outside the grid on every side, and an invalid batch index
    coords = torch.stack([
        torch.randint(-1, batch + 1, (n, ), generator=gen),
        torch.randint(-1, nx + 1, (n, ), generator=gen),
        torch.randint(-1, ny + 1, (n, ), generator=gen),
        torch.randint(-1, nz + 1, (n, ), generator=gen),
    ], dim=1)
    if integer_feats:
        feats = torch.randint(-50, 50, (n, c), generator=gen).to(dtype)
    else:
        feats = torch.randn(n, c, generator=gen, dtype=dtype)
    return feats, coords


def test_bev_pool_equals_loop_exactly_with_integer_features():
    feats, coords = _random_case(integer_feats=True)
    out = bev_pool(feats, coords, 2, (7, 6, 3))
    ref = bev_pool_reference(feats, coords, 2, (7, 6, 3))
    assert out.shape == (2, 5, 3, 7, 6)
    assert torch.equal(out, ref)
    # the case really has points in and out of the grid, and cells with several points
    inside = ((coords[:, 0] >= 0) & (coords[:, 0] < 2) & (coords[:, 1] >= 0) & (coords[:, 1] < 7)
              & (coords[:, 2] >= 0) & (coords[:, 2] < 6) & (coords[:, 3] >= 0) & (coords[:, 3] < 3))
    assert 0 < int(inside.sum()) < coords.shape[0]
    assert torch.unique(coords[inside], dim=0).shape[0] < int(inside.sum())


def test_bev_pool_float64_and_gradient_match_loop():
    feats, coords = _random_case(n=400, c=3, batch=1, grid=(5, 4, 2), seed=1, dtype=torch.float64)
    f1 = feats.clone().requires_grad_(True)
    f2 = feats.clone().requires_grad_(True)
    out = bev_pool(f1, coords, 1, (5, 4, 2))
    ref = bev_pool_reference(f2, coords, 1, (5, 4, 2))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    w = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    (out * w).sum().backward()
    (ref * w).sum().backward()
    torch.testing.assert_close(f1.grad, f2.grad, rtol=0, atol=1e-12)
    # gradient of a point outside the grid is zero
    outside = (coords[:, 0] != 0) | (coords[:, 1] < 0) | (coords[:, 1] >= 5) | (coords[:, 3] >= 2)
    assert outside.any() and torch.all(f1.grad[outside] == 0)


def test_bev_pool_rejects_bad_inputs():
    feats = torch.zeros(3, 2)
    with pytest.raises(ValueError, match='coords'):
        bev_pool(feats, torch.zeros(3, 3, dtype=torch.long), 1, (2, 2, 1))
    with pytest.raises(TypeError, match='integer'):
        bev_pool(feats, torch.zeros(3, 4), 1, (2, 2, 1))
    with pytest.raises(ValueError, match='grid_size'):
        bev_pool(feats, torch.zeros(3, 4, dtype=torch.long), 1, (2, 2))

"""The pieces of rendering on their own: ray batch, field opacities, compositor, along-ray sampler."""
import math

import pytest
import torch

import clap_plugin  # noqa: F401  (registers the modules)
from clap_plugin.models.rendering import (
    NeuSAlongRaySampler,
    NeuSField,
    RayBatch,
    alpha_to_weights,
    composite,
    neus_alpha,
)


def _batch(n, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    origins, directions = torch.randn(n, 3, generator=g, dtype=dtype), torch.randn(n, 3, generator=g, dtype=dtype)
    return RayBatch.create(origins, directions, range=torch.rand(n, generator=g, dtype=dtype),
                           rgb=torch.rand(n, 3, generator=g, dtype=dtype), rgb_mask=torch.arange(n) % 2 == 0)


def test_ray_batch_create_cat_to_len_and_indexing():
    a, b = _batch(5, 0), _batch(3, 1)
    assert len(a) == 5 and a.range_mask.all() and a.rgb_mask.tolist() == [True, False, True, False, True]
    geo = RayBatch.create(torch.zeros(4, 3), torch.ones(4, 3))  # no targets: zeros, masks all False
    assert len(geo) == 4 and not geo.range_mask.any() and not geo.rgb_mask.any()
    assert torch.equal(geo.range, torch.zeros(4)) and torch.equal(geo.rgb, torch.zeros(4, 3))
    c = RayBatch.cat([a, b])
    assert len(c) == 8
    for name in ('origins', 'directions', 'range', 'range_mask', 'rgb', 'rgb_mask'):
        assert torch.equal(getattr(c, name), torch.cat([getattr(a, name), getattr(b, name)])), name
    assert len(c[:0]) == 0 and len(c[5:]) == 3 and torch.equal(c[5:].origins, b.origins)
    picked = c[c.rgb_mask]
    assert len(picked) == int(c.rgb_mask.sum()) and picked.rgb_mask.all()
    f32 = c.to(dtype=torch.float32)
    assert f32.origins.dtype == torch.float32 and f32.rgb.dtype == torch.float32
    assert f32.range_mask.dtype == torch.bool and f32.rgb_mask.dtype == torch.bool  # masks stay bool
    assert c.to('cpu').origins.device.type == 'cpu'
    with pytest.raises(ValueError, match='at least one'):
        RayBatch.cat([])


def test_field_alpha_matches_a_naive_reference_and_trains_the_sharpness():
    torch.manual_seed(0)
    field = NeuSField(4, point_cloud_range=[-4, -4, -1, 4, 4, 1], coord_scale=0.25, init_sharpness=7.0).double()
    h = float(field.sharpness.detach())  # 7 up to the float32 rounding of the initial parameter
    assert h == pytest.approx(7.0, rel=1e-6)
    sdf = torch.randn(3, 6, dtype=torch.float64) * 0.3
    alpha = field.bind(torch.randn(4, 2, 5, 5, dtype=torch.float64)).alpha(sdf)
    eps = 1e-5
    for r in range(3):
        for n in range(5):
            phi0 = 1.0 / (1.0 + math.exp(-h * float(sdf[r, n])))
            phi1 = 1.0 / (1.0 + math.exp(-h * float(sdf[r, n + 1])))
            ref = min(max((phi0 - phi1 + eps) / (phi0 + eps), 0.0), 1.0)
            assert float(alpha[r, n]) == pytest.approx(ref, abs=1e-12)
    # entering a surface (SDF + -> -) is opaque, leaving it (- -> +) is clear
    step = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)
    a = neus_alpha(step, 50.0)
    assert float(a[0, 0]) > 0.99 and float(a[1, 0]) < 1e-3
    alpha.sum().backward()
    assert field.sharpness_v.grad is not None and field.sharpness_v.grad.abs() > 0


def test_compositor_weights_and_analytic_cases():
    a = 0.3
    alpha = torch.full((1, 4), a, dtype=torch.float64)
    w = alpha_to_weights(alpha)
    assert torch.allclose(w[0], torch.tensor([a * (1 - a) ** n for n in range(4)], dtype=torch.float64))
    t = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]], dtype=torch.float64)
    far = torch.tensor([9.0], dtype=torch.float64)
    out = composite(alpha, t, far)
    acc = 1 - (1 - a) ** 4
    assert float(out.acc[0]) == pytest.approx(acc)
    mids = [1.5, 2.5, 3.5, 4.5]
    expected = sum(a * (1 - a) ** n * m for n, m in enumerate(mids)) + (1 - acc) * 9.0  # background at far
    assert float(out.range[0]) == pytest.approx(expected)
    assert torch.equal(out.rgb, torch.zeros(1, 3, dtype=torch.float64))  # no colours given
    # one opaque interval: its mid range and the mean colour of its end points; nothing behind it counts
    alpha = torch.tensor([[0.0, 1.0, 0.5, 0.5]], dtype=torch.float64)
    rgb = torch.rand(1, 5, 3, dtype=torch.float64)
    out = composite(alpha, t, far, rgb, background_color=(1.0, 1.0, 1.0))
    assert torch.allclose(out.weights, torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=torch.float64))
    assert float(out.range[0]) == pytest.approx(2.5) and float(out.acc[0]) == pytest.approx(1.0)
    assert torch.allclose(out.rgb[0], 0.5 * (rgb[0, 1] + rgb[0, 2]))
    # random opacities: weights non-negative, summing to acc <= 1
    alpha = torch.rand(50, 20, dtype=torch.float64)
    t = torch.sort(torch.rand(50, 21, dtype=torch.float64) * 10, dim=-1)[0]
    out = composite(alpha, t, torch.full((50, ), 10.0))
    assert torch.all(out.weights >= 0) and torch.all(out.acc <= 1 + 1e-12)
    assert torch.allclose(out.weights.sum(-1), out.acc)


def test_along_ray_sampler_concentrates_samples_at_the_surface():
    sampler = NeuSAlongRaySampler(num_stratified=16, num_importance=12, up_sample_steps=3, base_up_sharpness=64.0)
    assert sampler.num_samples == 28
    o = torch.zeros(2, 3, dtype=torch.float64)
    d = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    near, far = torch.full((2, ), 1.0, dtype=torch.float64), torch.full((2, ), 17.0, dtype=torch.float64)

    def plane_sdf(p):  # the plane x + y = 10 (normalised by 1/16), positive towards the origin
        return (10.0 - p[:, 0] - p[:, 1]) / 16.0

    t = sampler(plane_sdf, o, d, near, far, perturb=False)
    assert t.shape == (2, 28) and torch.all(t[:, 1:] >= t[:, :-1])
    assert torch.all(t >= 1.0) and torch.all(t <= 17.0)
    assert torch.equal(t, sampler(plane_sdf, o, d, near, far, perturb=False))  # no jitter: deterministic
    assert int(((t - 10.0).abs() < 1.0).sum(dim=1).min()) >= 12  # the importance samples sit at the surface
    torch.manual_seed(0)
    jittered = sampler(plane_sdf, o, d, near, far, perturb=True)
    assert not torch.equal(jittered, t) and torch.all(jittered[:, 1:] >= jittered[:, :-1])


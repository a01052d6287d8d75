"""Rendering: analytic SDFs render the right range/colour; weights, gradients and chunking of the head."""
import pytest
import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS

import clap_plugin  # noqa: F401  (registers the modules)
from clap_plugin.models.rendering import NeuSAlongRaySampler, RayBatch, neus_alpha, render_rays, trilinear_interpolate

pytestmark = pytest.mark.usefixtures('mmdet3d_default_scope')  # build in the mmdet3d registry scope


SCALE = 1.0 / 54


class PlaneField:
    """SDF of the plane {p : n.p = d} (positive on the origin's side), constant colour, NeuS opacities of
    sharpness ``sharpness``."""
    sharpness = 3000.0

    def __init__(self, normal, dist, color=(0.2, 0.5, 0.7)):
        self.n = F.normalize(torch.as_tensor(normal, dtype=torch.float64), dim=0)
        self.d = dist
        self.c = torch.as_tensor(color, dtype=torch.float64)

    def query(self, p):
        return (self.d - p @ self.n) * SCALE, p[:, :1] * 0

    def sdf(self, p):
        return self.query(p)[0]

    def alpha(self, sdf):
        return neus_alpha(sdf, self.sharpness)

    def color(self, p, v, f, n):
        return self.c.expand(p.shape[0], 3)


class SphereField(PlaneField):

    def __init__(self, center, radius, color=(0.9, 0.1, 0.3)):
        self.center = torch.as_tensor(center, dtype=torch.float64)
        self.radius = radius
        self.c = torch.as_tensor(color, dtype=torch.float64)

    def query(self, p):
        return ((p - self.center).norm(dim=-1) - self.radius) * SCALE, p[:, :1] * 0


def _rays(dirs):
    d = F.normalize(torch.as_tensor(dirs, dtype=torch.float64), dim=-1)
    return torch.zeros_like(d), d


def _render(field, o, d, far=80.0, perturb=False, sharpness=3000.0):
    n = o.shape[0]
    field.sharpness = torch.tensor(sharpness, dtype=o.dtype)
    return render_rays(field, o, d, torch.full((n, ), 1.0, dtype=o.dtype), torch.full((n, ), far, dtype=o.dtype),
                       NeuSAlongRaySampler(num_stratified=72, num_importance=24), perturb=perturb)


@pytest.mark.parametrize('perturb', [False, True])
@pytest.mark.parametrize('dist', [2.5, 10.0, 31.0, 50.0])
def test_plane_renders_its_distance(dist, perturb):
    torch.manual_seed(0)
    normal = [1.0, 0.3, -0.1]
    o, d = _rays([[1.0, 0.3, -0.1], [1.0, 0.0, 0.0], [1.0, -0.4, 0.2], [0.7, 0.7, 0.0]])
    out = _render(PlaneField(normal, dist), o, d, perturb=perturb)
    n = F.normalize(torch.tensor(normal, dtype=torch.float64), dim=0)
    expected = dist / (d @ n)  # distance along each ray to the plane
    assert torch.all((out['range'] - expected).abs() <= 0.01 * expected), (out['range'], expected)
    assert torch.all(out['acc'] > 0.99)


def test_sphere_hits_and_misses():
    center, radius = torch.tensor([20.0, 5.0, 0.0], dtype=torch.float64), 4.0
    c_dir = F.normalize(center, dim=0)
    o, d = _rays([c_dir.tolist(), (c_dir + torch.tensor([0.0, 0.1, 0.05], dtype=torch.float64)).tolist(),
                  [-1.0, 0.0, 0.0], [0.0, -1.0, 0.2]])
    out = _render(SphereField(center, radius), o, d, far=60.0)
    # analytic first intersection t = b - sqrt(b^2 - |c|^2 + r^2), b = d.c
    b = d[:2] @ center
    t_hit = b - torch.sqrt(b ** 2 - center.dot(center) + radius ** 2)
    assert torch.all((out['range'][:2] - t_hit).abs() <= 0.01 * t_hit), (out['range'][:2], t_hit)
    assert torch.all(out['acc'][:2] > 0.99)
    # misses: no opacity, the background range (far) and background colour (black)
    assert torch.all(out['acc'][2:] < 1e-3)
    assert torch.allclose(out['range'][2:], torch.full((2, ), 60.0, dtype=torch.float64), rtol=1e-3)
    assert torch.all(out['rgb'][2:].abs() < 1e-3)


def test_constant_colour_field_renders_that_colour():
    colour = (0.25, 0.6, 0.85)
    o, d = _rays([[1.0, 0.2, 0.0], [0.3, 1.0, 0.1], [-1.0, -1.0, 0.0]])
    out = _render(SphereField([0.0, 0.0, 0.0], 30.0, colour), o, d)  # inside a sphere: every ray hits
    assert torch.allclose(out['rgb'], torch.tensor(colour, dtype=torch.float64).expand(3, 3), atol=1e-3)


def _head(**kw):
    cfg = dict(type='CLAPRenderingHead', in_channels=8, point_cloud_range=[-8, -8, -2, 8, 8, 2],
               coord_scale=1 / 8.0, init_sharpness=50.0)
    cfg.update(kw)
    return MODELS.build(cfg)


def _ray_batch(n, gen):
    d = F.normalize(torch.randn(n, 3, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 1.0, 0.2],
                    dtype=torch.float64), dim=-1)
    o = torch.rand(n, 3, generator=gen, dtype=torch.float64) * 0.5
    rng = 2.0 + 4.0 * torch.rand(n, generator=gen, dtype=torch.float64)
    mask = torch.rand(n, generator=gen) > 0.3
    rng[~mask] = float('nan')  # rays without a LiDAR return: masked, NaN must not leak into the loss
    return RayBatch.create(o, d, range=rng, range_mask=mask, rgb=torch.rand(n, 3, generator=gen, dtype=torch.float64))


def test_head_weights_nonnegative_and_sum_at_most_one():
    gen = torch.Generator().manual_seed(1)
    head = _head().double().eval()
    vol = torch.randn(1, 8, 4, 10, 10, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        out = head.render(vol, _ray_batch(50, gen), return_weights=True)
    assert out['weights'].shape == (50, 95)
    assert torch.all(out['weights'] >= 0)
    assert torch.all(out['weights'].sum(-1) <= 1 + 1e-6)
    assert torch.allclose(out['weights'].sum(-1), out['acc'])
    assert torch.all((out['rgb'] >= 0) & (out['rgb'] <= 1))


def test_head_loss_gradients_reach_volume_and_mlps():
    gen = torch.Generator().manual_seed(2)
    torch.manual_seed(2)
    head = _head().double().train()
    vol = torch.randn(2, 8, 4, 10, 10, generator=gen, dtype=torch.float64, requires_grad=True)
    losses = head.loss(vol, [_ray_batch(30, gen), _ray_batch(20, gen)])
    assert set(losses) == {'loss_range', 'loss_surface', 'loss_rgb'}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert vol.grad is not None and vol.grad.abs().sum() > 0 and torch.isfinite(vol.grad).all()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_chunked_and_unchunked_agree():
    gen = torch.Generator().manual_seed(3)
    rays = [_ray_batch(37, gen)]
    vol0 = torch.randn(1, 8, 4, 10, 10, generator=gen, dtype=torch.float64)
    results = []
    for chunk, ckpt in [(100000, False), (8, True), (5, False)]:
        torch.manual_seed(0)
        head = _head(ray_chunk_size=chunk, checkpoint_chunks=ckpt).double().eval()  # eval: no jitter
        vol = vol0.clone().requires_grad_(True)
        losses = head.loss(vol, rays)
        total = sum(losses.values())
        total.backward()
        with torch.no_grad():
            out = head.render(vol, rays[0])
        results.append((out, total.detach(), vol.grad.clone(), [p.grad.clone() for p in head.parameters()]))
    ref = results[0]
    for out, total, vgrad, pgrads in results[1:]:
        assert torch.allclose(out['range'], ref[0]['range'], atol=1e-5)
        assert torch.allclose(out['rgb'], ref[0]['rgb'], atol=1e-5)
        assert torch.allclose(total, ref[1], atol=1e-5)
        assert torch.allclose(vgrad, ref[2], atol=1e-5)
        for a, b in zip(pgrads, ref[3]):
            assert torch.allclose(a, b, atol=1e-5)


def test_trilinear_matches_grid_sample_and_is_twice_differentiable():
    gen = torch.Generator().manual_seed(4)
    vol = torch.randn(2, 3, 4, 5, 6, generator=gen, dtype=torch.float64)
    grid = torch.rand(2, 64, 3, generator=gen, dtype=torch.float64) * 2.4 - 1.2  # some outside: border
    ref = F.grid_sample(vol, grid[:, :, None, None, :], mode='bilinear', padding_mode='border',
                        align_corners=False)[:, :, :, 0, 0].transpose(1, 2)
    assert torch.allclose(trilinear_interpolate(vol, grid), ref, atol=1e-12)
    # second derivative d2f/dxdy of a trilinear cell equals the finite difference of the first derivative
    g = (torch.rand(1, 16, 3, generator=gen, dtype=torch.float64) * 1.2 - 0.6).requires_grad_(True)
    f = trilinear_interpolate(vol[:1], g)[..., 0].sum()
    dx = torch.autograd.grad(f, g, create_graph=True)[0][..., 0]
    dxy = torch.autograd.grad(dx.sum(), g)[0][..., 1]
    h = 1e-6

    def d_dx(gg):
        gg = gg.clone().requires_grad_(True)
        return torch.autograd.grad(trilinear_interpolate(vol[:1], gg)[..., 0].sum(), gg)[0][..., 0]

    shift = torch.zeros_like(g)
    shift[..., 1] = h
    fd = (d_dx(g.detach() + shift) - d_dx(g.detach() - shift)) / (2 * h)
    assert dxy.abs().sum() > 0
    assert torch.allclose(dxy, fd, atol=1e-5)


def test_bad_inputs_raise_clear_errors():
    head = _head()
    with pytest.raises(ValueError, match='ray batches'):
        head.loss(torch.zeros(2, 8, 4, 10, 10), [RayBatch.create(torch.zeros(1, 3), torch.ones(1, 3))])
    with pytest.raises(ValueError, match='ray_chunk_size'):
        _head(ray_chunk_size=0)
    # a sample without rays renders nothing and its loss terms are zero (still connected to the graph)
    vol = torch.zeros(1, 8, 4, 10, 10, requires_grad=True)
    empty = RayBatch.create(torch.zeros(0, 3), torch.zeros(0, 3), range=torch.zeros(0), rgb=torch.zeros(0, 3))
    assert head.render(vol, empty)['range'].shape == (0, )
    losses = head.loss(vol, [empty])
    assert all(float(v) == 0.0 and v.requires_grad for v in losses.values())

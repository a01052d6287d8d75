"""Curvature: analytic SDFs give the known mean curvature; the sampler draws in proportion to it."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet3d.registry import TASK_UTILS

import clap_plugin  # noqa: F401
from clap_plugin.models.ray_selection import CurvatureRaySelector, mean_curvature
from clap_plugin.models.rendering import CLAPRenderingHead

pytestmark = pytest.mark.usefixtures('mmdet3d_default_scope')  # build in the mmdet3d registry scope


R = 2.5
CENTER = torch.tensor([4.0, -1.0, 0.5], dtype=torch.float64)


def sphere_sdf(p):
    return (p - CENTER).norm(dim=-1) - R


def cylinder_sdf(p):  # axis along z through CENTER
    return (p[:, :2] - CENTER[:2]).norm(dim=-1) - R


def plane_sdf(p):
    n = F.normalize(torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64), dim=0)
    return p @ n - 0.7


def _surface_points(n, gen, cylinder=False):
    d = F.normalize(torch.randn(n, 3, generator=gen, dtype=torch.float64), dim=-1)
    if cylinder:
        d = F.normalize(d * torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64), dim=-1)
        d[:, 2] = torch.rand(n, generator=gen, dtype=torch.float64) * 4 - 2
        return CENTER + d * torch.tensor([R, R, 1.0], dtype=torch.float64)
    return CENTER + R * d


@pytest.mark.parametrize('estimator', ['exact', 'finite_difference'])
def test_analytic_curvatures(estimator):
    gen = torch.Generator().manual_seed(0)
    sphere = mean_curvature(sphere_sdf, _surface_points(200, gen), estimator, step=0.01).abs()
    cyl = mean_curvature(cylinder_sdf, _surface_points(200, gen, cylinder=True), estimator, step=0.01).abs()
    plane = mean_curvature(plane_sdf, torch.randn(200, 3, generator=gen, dtype=torch.float64) * 10,
                           estimator, step=0.01).abs()
    assert torch.all((sphere - 2 / R).abs() <= 0.05 * 2 / R), sphere
    assert torch.all((cyl - 1 / R).abs() <= 0.05 / R), cyl
    assert torch.all(plane <= 1e-3 * 2 / R), plane
    # off the surface the level set of a sphere SDF is a sphere of radius R + s
    off = CENTER + (R + 1.5) * F.normalize(torch.randn(50, 3, generator=gen, dtype=torch.float64), dim=-1)
    k = mean_curvature(sphere_sdf, off, estimator, step=0.01)
    assert torch.allclose(k, torch.full_like(k, 2 / (R + 1.5)), rtol=0.05)


def test_exact_and_finite_difference_agree_on_the_rendering_field():
    torch.manual_seed(0)
    head = CLAPRenderingHead(in_channels=4, point_cloud_range=[-8, -8, -2, 8, 8, 2], coord_scale=1 / 8.0).double()
    vol = torch.randn(1, 4, 3, 4, 4, dtype=torch.float64)
    sdf = head.sdf_function(vol)
    gen = torch.Generator().manual_seed(1)
    # the trilinear field has kinks on the planes through the sample centres (align_corners=False:
    # x_min + (i + 0.5) * cell); put points near the middles between centres so that the finite
    # differences stay inside one trilinear cell
    cell = torch.tensor([4.0, 4.0, 4.0 / 3], dtype=torch.float64)
    idx = torch.stack([torch.randint(1, n, (100, ), generator=gen) for n in (4, 4, 3)], dim=-1).to(torch.float64)
    middle = torch.tensor([-8.0, -8.0, -2.0], dtype=torch.float64) + idx * cell
    pts = middle + (torch.rand(100, 3, generator=gen, dtype=torch.float64) - 0.5) * 0.6 * cell
    exact = mean_curvature(sdf, pts, 'exact')
    fd = mean_curvature(sdf, pts, 'finite_difference', step=1e-3)
    assert exact.abs().mean() > 0
    assert torch.all((exact - fd).abs() <= 0.05 * exact.abs().clamp(min=1e-3)), (exact - fd).abs().max()


def _scene(gen):
    """19000 points on a ground plane (kappa 0) and 1000 on a small sphere (kappa 2/r = 4)."""
    ground = torch.rand(19000, 3, generator=gen, dtype=torch.float64) * torch.tensor([40.0, 40.0, 0.0],
                                                                                      dtype=torch.float64)
    ground[:, :2] -= 20
    ground[:, 2] = -1.0
    c, r = torch.tensor([10.0, 0.0, 1.0], dtype=torch.float64), 0.5
    ball = c + r * F.normalize(torch.randn(1000, 3, generator=gen, dtype=torch.float64), dim=-1)

    def sdf(p):
        return torch.minimum(p[:, 2] + 1.0, (p - c).norm(dim=-1) - r)

    return torch.cat([ground, ball]), sdf


def test_draws_follow_the_curvature_weights():
    gen = torch.Generator().manual_seed(0)
    pts, sdf = _scene(gen)
    sampler = TASK_UTILS.build(dict(type='CurvatureRaySelector', num_lidar_rays=20, warmup_epochs=0, eps=0.2))
    w = sampler.point_weights(pts, sdf, epoch=0)
    assert torch.allclose(w.sum(), torch.tensor(1.0, dtype=w.dtype))
    share = float(w[19000:].sum())  # 1000 * 4.2 / (1000 * 4.2 + 19000 * 0.2) ~= 0.525
    assert 0.45 < share < 0.6
    trials, hits = 200, 0
    for _ in range(trials):
        hits += int((sampler.draw(w, 20, gen) >= 19000).sum())
    frac = hits / (trials * 20)
    sigma = math.sqrt(share * (1 - share) / (trials * 20))
    assert abs(frac - share) < 4 * sigma + 0.01, (frac, share)
    # uniform sampling would give 5 %
    assert frac > 0.4


def test_candidate_subset_spreads_scores_to_cells():
    gen = torch.Generator().manual_seed(1)
    pts, sdf = _scene(gen)
    sampler = CurvatureRaySelector(warmup_epochs=0, eps=0.2, num_candidates=2000, cell_size=2.0)
    w = sampler.point_weights(pts, sdf, epoch=0, generator=gen)
    assert w.shape == (20000, ) and torch.all(w > 0)
    assert float(w[19000:].mean()) > 5 * float(w[:19000].mean())


def test_warmup_gives_uniform_draws():
    gen = torch.Generator().manual_seed(2)
    pts, sdf = _scene(gen)
    sampler = CurvatureRaySelector(num_lidar_rays=500, num_pixels_per_camera=64, warmup_epochs=4)
    lidar2img = torch.eye(4, dtype=torch.float64)[None].repeat(2, 1, 1)
    out = sampler.select(pts, lidar2img, (20, 30), sdf_fn=sdf, epoch=3, generator=gen)
    assert torch.allclose(out.point_weights, torch.full((20000, ), 1 / 20000, dtype=torch.float64))
    assert torch.allclose(out.pixel_maps, torch.full((2, 20, 30), 1 / 600, dtype=torch.float64))
    assert out.point_inds.unique().numel() == 500
    assert out.pixels.shape == (2, 64, 2)
    # the caller passes the training epoch
    assert sampler.in_warmup(1)
    assert not sampler.in_warmup(4)
    after = sampler.select(pts, lidar2img, (20, 30), sdf_fn=sdf, epoch=4, generator=gen)
    assert not torch.allclose(after.point_weights, out.point_weights)
    # the uniform weighting never leaves the uniform draws
    assert CurvatureRaySelector(warmup_epochs=4, weighting='uniform').in_warmup(10**6)


def test_pixel_maps_put_mass_where_heavy_points_project():
    h, w, f = 60, 80, 50.0
    # camera at the origin looking along +x (camera z = lidar x, camera x = -lidar y, camera y = -lidar z)
    lidar2cam = torch.tensor([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=torch.float64)
    k = torch.tensor([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float64)
    lidar2img = (k @ lidar2cam)[None]
    gen = torch.Generator().manual_seed(3)
    light = torch.rand(500, 3, generator=gen, dtype=torch.float64) * torch.tensor([10, 8, 6], dtype=torch.float64) \
        + torch.tensor([5, -4, -3], dtype=torch.float64)
    heavy = torch.tensor([[10.0, -2.0, 1.0]], dtype=torch.float64)  # projects to u = 40 + 10, v = 30 - 5
    pts = torch.cat([light, heavy])
    weights = torch.cat([torch.full((500, ), 1e-4, dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)])
    sampler = CurvatureRaySelector(gaussian_kernel_size=5, gaussian_sigma=1.0, pixel_floor=0.1)
    maps = sampler.pixel_weight_maps(pts, weights, lidar2img, (h, w))
    assert maps.shape == (1, h, w)
    assert torch.allclose(maps.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert torch.all(maps >= 0.1 / (h * w) - 1e-12)  # the floor
    window = maps[0, 25 - 2:25 + 3, 50 - 2:50 + 3].sum()
    heavy_share = 1.0 / weights.sum()
    assert window >= 0.9 * heavy_share * 0.99  # (1 - floor) of the heavy point's share stays in the kernel
    assert maps[0].argmax() == 25 * w + 50
    px = sampler.draw_pixels(maps, 200, gen)
    near = ((px[0, :, 0] - 50.5).abs() <= 2) & ((px[0, :, 1] - 25.5).abs() <= 2)
    assert near.sum() == 25  # every pixel of the heavy window is drawn first (without replacement)


def test_bad_config_raises():
    with pytest.raises(ValueError, match='estimator'):
        CurvatureRaySelector(estimator='laplace')
    with pytest.raises(ValueError, match='gaussian_kernel_size'):
        CurvatureRaySelector(gaussian_kernel_size=4)

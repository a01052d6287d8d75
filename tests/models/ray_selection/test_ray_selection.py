"""The ray selector's pixel policies and its typed selection."""
import pytest
import torch
from mmdet3d.registry import TASK_UTILS

import clap_plugin  # noqa: F401
from clap_plugin.models.ray_selection import CurvatureRaySelector, RaySelection


def test_through_points_policy_draws_only_pixels_that_points_project_into():
    sel = TASK_UTILS.build(dict(type='CurvatureRaySelector', num_lidar_rays=10, num_pixels_per_camera=5,
                                warmup_epochs=0, pixel_policy='through_points'))
    assert isinstance(sel, CurvatureRaySelector)
    gen = torch.Generator().manual_seed(0)
    pts = torch.randn(100, 3, generator=gen)
    hit = torch.zeros(2, 8, 12, dtype=torch.bool)
    cells = [(1, 2), (3, 4), (5, 6), (7, 7), (0, 11), (4, 0)]
    for v, u in cells:
        hit[0, v, u] = True  # camera 1: no point projects into it
    out = sel.select(pts, torch.eye(4)[None].repeat(2, 1, 1), (8, 12), sdf_fn=lambda p: p[:, 0], epoch=10,
                     generator=gen, lidar_pixels=hit)
    assert isinstance(out, RaySelection) and out.point_inds.shape == (10, ) and out.pixels.shape == (2, 5, 2)
    assert torch.allclose(out.pixel_maps[0][hit[0]], torch.full((6, ), 1 / 6))  # uniform over the hit pixels
    assert torch.all(out.pixel_maps[0][~hit[0]] == 0)
    assert torch.allclose(out.pixel_maps[1], torch.full((8, 12), 1 / 96))  # no hit: uniform over the image
    uv = out.pixels[0].long()
    assert all((int(v), int(u)) in cells for u, v in uv.tolist())
    assert len({tuple(p) for p in uv.tolist()}) == 5  # without replacement
    with pytest.raises(ValueError, match='lidar_pixels'):
        sel.select(pts, torch.eye(4)[None], (8, 12))
    with pytest.raises(ValueError, match='pixel_policy'):
        CurvatureRaySelector(pixel_policy='everywhere')


def test_weight_map_policy_ignores_lidar_pixels_and_needs_no_camera():
    sel = CurvatureRaySelector(num_lidar_rays=7, num_pixels_per_camera=4, warmup_epochs=3)
    pts = torch.randn(50, 3)
    lidar_only = sel.select(pts, epoch=0)
    assert lidar_only.pixels is None and lidar_only.pixel_maps is None and lidar_only.point_inds.shape == (7, )
    hit = torch.zeros(1, 6, 6, dtype=torch.bool)
    hit[0, 0, 0] = True
    out = sel.select(pts, torch.eye(4)[None], (6, 6), epoch=0, lidar_pixels=hit)  # warm-up: uniform maps
    assert torch.allclose(out.pixel_maps, torch.full((1, 6, 6), 1 / 36))

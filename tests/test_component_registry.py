"""Every CLAP core component builds from a config dict through mmdet3d's registries with the
paper's defaults (arXiv 2412.03059: rendering, curvature sampling, prototypes; see docs/method.md)."""
import pytest
import torch
from mmdet3d.registry import HOOKS, MODELS, TASK_UTILS

import clap_plugin  # noqa: F401

pytestmark = pytest.mark.usefixtures('mmdet3d_default_scope')  # build in the mmdet3d registry scope


def test_components_build_from_config_with_spec_defaults():
    head = MODELS.build(dict(type='CLAPRenderingHead', in_channels=32))
    assert (head.sampler.num_stratified, head.sampler.num_importance, head.sampler.up_sample_steps) == (72, 24, 4)
    assert (head.loss_range_weight, head.loss_surface_weight, head.loss_rgb_weight) == (2.0, 0.1, 0.1)
    assert abs(head.coord_scale - 1 / 54) < 1e-12 and head.near == 1.0
    assert head.field.sdf[0].out_features == 16 and len(head.field.sdf) == 6 and len(head.field.rgb) == 3
    assert head.field.act.beta == 100

    sampler = TASK_UTILS.build(dict(type='CurvatureRaySelector'))
    assert type(sampler).__name__ == 'CurvatureRaySelector' and sampler.pixel_policy == 'weight_maps'
    assert (sampler.num_lidar_rays, sampler.num_pixels_per_camera, sampler.warmup_epochs) == (8192, 1024, 4)

    swap = MODELS.build(dict(type='SwappedPrototypeLoss'))
    assert tuple(swap.prototypes.shape) == (512, 128)
    assert torch.allclose(swap.prototypes.norm(dim=-1), torch.ones(512), atol=1e-5)
    assert (swap.sinkhorn_iterations, swap.sinkhorn_epsilon, swap.temperature) == (3, 0.05, 1.0)
    assert (swap.loss_swap_weight, swap.loss_em_weight) == (1.0, 0.1)
    assert swap.lidar_proj[0].in_features == 256 and swap.camera_proj[0].in_features == 80

    gram = MODELS.build(dict(type='GramRegularizer'))
    assert gram.loss_weight == 0.1

    hook = HOOKS.build(dict(type='PrototypeEMHook', interval=10, freeze_iters=100))
    assert (hook.interval, hook.freeze_iters) == (10, 100)

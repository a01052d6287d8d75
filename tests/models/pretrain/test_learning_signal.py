"""Every CLAP loss term teaches what it should: gradient reach per term, informative prototype cells, real-pixel
RGB targets, and the loss units and parameterisations that keep the paper's weights meaningful."""

import numpy as np
import pytest
import torch
from mmdet3d.registry import MODELS
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub

from clap_plugin.models.rendering import RayBatch
from tests.helpers.paths import REPO
from tests.helpers.pretrain import TINY_PRETRAIN, tiny_pretrain_setup

ROOT = REPO
TINY = TINY_PRETRAIN
TERMS = ('loss_range', 'loss_surface', 'loss_rgb', 'loss_swap', 'loss_em', 'loss_gram')


@pytest.fixture(scope='module')
def tiny(synthetic_nus):
    return tiny_pretrain_setup(synthetic_nus)


def _model_and_data(cfg, dataset, idx=0, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(pseudo_collate([dataset[idx]]), training=True)
    return model, data


def _grad_norm(module):
    grads = [p.grad.norm() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def test_each_loss_term_alone_reaches_the_parameters_it_should(tiny):
    cfg, dataset = tiny
    hub = MessageHub.get_current_instance()
    epoch = hub.get_info('epoch', 0)
    hub.update_info('epoch', 5)  # past the warm-up: curvature sampling on
    try:
        _check_gradient_reach(cfg, dataset)
    finally:
        hub.update_info('epoch', epoch)


def _check_gradient_reach(cfg, dataset):
    model, data = _model_and_data(cfg, dataset)
    # the prototype losses see the prototypes (not frozen) in this test
    model.prototype_state.frozen = False
    reach = {}
    for term in TERMS:
        torch.manual_seed(1)
        model.zero_grad(set_to_none=True)
        losses = model.loss(data['inputs'], data['data_samples'])
        losses[term].backward()
        reach[term] = dict(lidar=_grad_norm(model.pts_middle_encoder), camera=_grad_norm(model.img_backbone),
                           prototypes=float(model.prototype_loss.prototypes.grad.norm())
                           if model.prototype_loss.prototypes.grad is not None else 0.0,
                           field=_grad_norm(model.rendering_head))
    for term in ('loss_range', 'loss_surface', 'loss_rgb'):
        assert reach[term]['lidar'] > 0 and reach[term]['camera'] > 0, (term, reach[term])
        assert reach[term]['field'] > 0 and reach[term]['prototypes'] == 0, (term, reach[term])
    for term in ('loss_swap', 'loss_em'):
        assert reach[term]['lidar'] > 0 and reach[term]['camera'] > 0 and reach[term]['prototypes'] > 0, \
            (term, reach[term])
    # the Gram term acts on the prototypes only
    assert reach['loss_gram']['prototypes'] > 0
    assert reach['loss_gram']['lidar'] == 0 and reach['loss_gram']['camera'] == 0
    # the sharpness of the NeuS field learns from the range term
    model.zero_grad(set_to_none=True)
    model.loss(data['inputs'], data['data_samples'])['loss_range'].backward()
    grad = model.rendering_head.field.sharpness_v.grad
    assert grad is not None and grad.abs() > 0


def test_prototype_cells_carry_lidar_features(tiny, monkeypatch):
    cfg, dataset = tiny
    model, data = _model_and_data(cfg, dataset)
    seen = {}
    original = type(model.prototype_loss).forward

    def spy(self, lidar_feats, camera_feats):
        seen['lidar'] = lidar_feats.detach().clone()
        return original(self, lidar_feats, camera_feats)

    monkeypatch.setattr(type(model.prototype_loss), 'forward', spy)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert seen['lidar'].shape[0] > 0
    assert bool((seen['lidar'].abs().sum(dim=1) > 0).all()), 'a prototype cell has an all-zero LiDAR feature'
    assert float(losses['proto_zero_lidar_share']) == 0.0
    assert losses['proto_cells'] >= 20
    # cells of the points that survived the masking almost never have a zero LiDAR BEV
    model.proto_cells_from = 'visible'
    visible = model.loss(data['inputs'], data['data_samples'])
    assert float(visible['proto_dropped_share']) <= 0.05
    assert bool((seen['lidar'].abs().sum(dim=1) > 0).all())
    for key in ('proto_hard_ppl_lidar', 'proto_hard_ppl_camera', 'proto_swap_agree', 'proto_swap_chance',
                'proto_cos_offdiag'):
        assert key in losses and torch.isfinite(losses[key]), key


def test_loss_units_are_the_normalised_frame(tiny):
    """Range L1 is in units of 1/54 m like the SDF: a 5.4 m range error costs w_L * 0.1, not w_L * 5.4."""
    cfg, _ = tiny
    head = MODELS.build(cfg.model.rendering_head)
    head.eval()
    vol = torch.zeros(1, head.field.geo[0].in_features - 3, 2, 4, 4)
    rays = RayBatch.create(torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]]))
    rendered = float(head.render(vol[0], rays)['range'][0])
    target = rendered + 5.4
    losses = head.loss(vol, [RayBatch.create(rays.origins, rays.directions, range=torch.tensor([target]))])
    assert losses['loss_range'].item() == pytest.approx(head.loss_range_weight * 5.4 * head.coord_scale, rel=1e-4)


def test_sharpness_moves_ten_times_faster_in_log_space(tiny):
    cfg, _ = tiny
    head = MODELS.build(cfg.model.rendering_head)
    h0 = float(head.sharpness)
    with torch.no_grad():
        head.field.sharpness_v += 0.01  # one AdamW step of lr 1e-2
    assert float(head.sharpness) / h0 == pytest.approx(np.exp(0.1), rel=1e-5)


def test_augmentation_borders_and_sky_are_never_rgb_targets(tiny):
    cfg, dataset = tiny
    from clap_plugin.models.rendering.ray_generation import pixels_inside_original
    model, data = _model_and_data(cfg, dataset, idx=1)
    model.ray_selector.num_pixels_per_camera = 6000  # of 128 x 352: the rotated corners are drawn too
    inputs, samples = data['inputs'], data['data_samples']
    metas = [s.metainfo for s in samples]
    imgs = inputs['imgs']
    cams = model.camera_matrices(metas, imgs.shape[1], imgs)
    raw = inputs['raw_imgs']
    volume = torch.zeros(1, model.volume_lifter.volume_channels, model.volume_lifter.num_z, 8, 8)
    ori_hw = model._ori_hw(metas[0])
    rays, info = model.build_rays(inputs['points'][0], raw, cams, 0, volume, ori_hw)
    n_l = info.selection.point_inds.numel()
    pixels = info.selection.pixels
    mask = rays.rgb_mask[n_l:].view(pixels.shape[:2])
    # the naive reference: map every drawn pixel back through the inverse augmentation
    aug = torch.as_tensor(np.asarray(metas[0]['img_aug_matrix']), dtype=torch.float64)
    a_inv = torch.inverse(aug[:, :2, :2])
    orig = torch.einsum('cij,crj->cri', a_inv, pixels.double() - aug[:, None, :2, 3])
    h, w = ori_hw
    outside = (orig[..., 0] < 0) | (orig[..., 0] > w) | (orig[..., 1] < 0) | (orig[..., 1] > h)
    assert outside.sum() > 0, 'the test needs border pixels: raise the rotation or the pixel count'
    assert not mask[outside].any(), 'a pixel filled by the augmentation is an RGB target'
    # real pixels with a LiDAR return are targets
    has_range = rays.range_mask[n_l:].view(pixels.shape[:2])
    inside = pixels_inside_original(pixels, cams['img_aug_matrix'][0], ori_hw)
    assert mask[inside & has_range].all()
    # sky: no LiDAR return and leaving the box through its top face -> no RGB target
    origins = rays.origins[n_l:]
    dirs = rays.directions[n_l:]
    pcr = model.point_cloud_range
    t_top = (pcr[5] - origins[:, 2]) / dirs[:, 2].clamp(min=1e-9)
    exit_top = (dirs[:, 2] > 0)
    for axis in range(2):  # the top face is reached before both side faces
        t_side = torch.where(dirs[:, axis] > 0, (pcr[3 + axis] - origins[:, axis]) / dirs[:, axis].clamp(min=1e-9),
                             (pcr[axis] - origins[:, axis]) / dirs[:, axis].clamp(max=-1e-9))
        exit_top &= t_top < t_side
    sky = (exit_top & ~rays.range_mask[n_l:]).view(pixels.shape[:2])
    assert sky.sum() > 0 and not mask[sky].any()
    # the naive zero-fill check: every target pixel of the raw image is not a black fill
    assert mask.float().mean() > 0.3


def test_geometry_only_rays_render_the_same_range(tiny):
    """LiDAR rays skip the colour MLP and the SDF-gradient graph; their range equals the full rendering."""
    cfg, _ = tiny
    torch.manual_seed(0)
    head = MODELS.build(cfg.model.rendering_head)
    head.eval()
    c = head.field.geo[0].in_features - 3
    vol = torch.randn(c, 5, 6, 6)
    g = torch.Generator().manual_seed(0)
    rays = RayBatch.create(torch.randn(40, 3, generator=g), torch.randn(40, 3, generator=g))
    full = head.render(vol, rays)
    mask = torch.arange(40) % 3 == 0
    split = head.render(vol, rays, color_mask=mask)
    assert torch.allclose(full['range'], split['range'], atol=1e-5)
    assert torch.allclose(full['rgb'][mask], split['rgb'][mask], atol=1e-6)
    assert torch.all(split['rgb'][~mask] == 0)

"""Ablation configs of the paper's Table 3, UniPAD-style separate pre-training and the merge tool."""
import copy
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmdet3d.registry import MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from tests.helpers.paths import REPO
from tests.helpers.pretrain import TINY_PRETRAIN, tiny_pretrain_setup

ROOT = REPO
ABL = osp.join(ROOT, 'configs', 'ablations')
TINY = TINY_PRETRAIN


def test_table3_configs_hold_their_settings():
    full = Config.fromfile(osp.join(ROOT, 'configs', 'clap_pretrain_nus.py')).model
    uni = Config.fromfile(osp.join(ABL, 'clap_ablation_joint-uniform_nus.py')).model
    curv = Config.fromfile(osp.join(ABL, 'clap_ablation_joint-curvature_nus.py')).model
    lid = Config.fromfile(osp.join(ABL, 'unipad_lidar_pretrain_nus.py')).model
    cam = Config.fromfile(osp.join(ABL, 'unipad_camera_pretrain_nus.py')).model
    assert full.prototype_loss.num_prototypes == 512 and full.ray_selector.warmup_epochs == 4
    assert full.ray_selector.num_lidar_rays == 8192 and full.ray_selector.num_pixels_per_camera == 1024
    assert uni.prototype_loss is None and uni.ray_selector.weighting == 'uniform'  # uniform in every epoch
    assert curv.prototype_loss is None and curv.ray_selector.warmup_epochs == 4
    assert lid.img_backbone is None and not lid.render_camera and lid.lidar_mask_ratio == 0.8
    assert cam.pts_middle_encoder is None and not cam.render_lidar and cam.ray_selector.pixel_policy == 'through_points'
    assert cam.ray_selector.num_pixels_per_camera == 512 and cam.camera_mask_ratio == 0.3
    assert cam.rendering_head.loss_range_weight == 10.0 and cam.rendering_head.loss_rgb_weight == 10.0


@pytest.fixture(scope='module')
def tiny_batch(synthetic_nus):
    cfg, dataset = tiny_pretrain_setup(synthetic_nus)
    return cfg, dataset[0]


def _loss(cfg_model, item):
    model = MODELS.build(cfg_model)
    model.train()
    data = model.data_preprocessor(pseudo_collate([item]), training=True)
    return model, model.loss(data['inputs'], data['data_samples']), data


def test_unipad_camera_half_casts_rays_through_projected_points(tiny_batch):
    cfg, item = tiny_batch
    m = copy.deepcopy(cfg.model)
    m.update(pts_voxel_encoder=None, pts_middle_encoder=None, fusion_layer=None, render_lidar=False,
             prototype_loss=None, gram_regularizer=None)
    m.ray_selector.pixel_policy = 'through_points'
    m.pts_backbone.in_channels = 32
    model, losses, data = _loss(m, item)
    assert {'loss_range', 'loss_rgb'} <= set(losses) and 'loss_swap' not in losses
    assert all(torch.isfinite(v) for v in losses.values())
    losses['loss_rgb'].backward()
    assert model.img_backbone.patch_embed.projection.weight.grad.abs().sum() > 0
    # every camera ray goes through a pixel where a LiDAR point projects, so every one has a range target
    inputs, samples = data['inputs'], data['data_samples']
    cams = model.camera_matrices([s.metainfo for s in samples], inputs['imgs'].shape[1], inputs['imgs'])
    rays, _ = model.build_rays(inputs['points'][0], inputs['raw_imgs'], cams, 0,
                               torch.zeros(1, 16, 5, 8, 8))
    assert rays.origins.shape[0] == 6 * model.ray_selector.num_pixels_per_camera
    assert bool(rays.range_mask.all())


def test_unipad_lidar_half_renders_depth_only(tiny_batch):
    cfg, item = tiny_batch
    m = copy.deepcopy(cfg.model)
    m.update(img_backbone=None, img_neck=None, view_transform=None, fusion_layer=None, render_camera=False,
             prototype_loss=None, gram_regularizer=None)
    m.pts_backbone.in_channels = 128
    model, losses, _ = _loss(m, item)
    assert float(losses['loss_range']) > 0 and float(losses['loss_rgb']) == 0.0
    assert model.img_backbone is None


def test_merge_takes_each_branch_from_its_half(tmp_path):
    lidar = {'pts_middle_encoder.w': torch.ones(2), 'pts_backbone.w': torch.ones(3), 'pts_neck.w': torch.ones(1),
             'rendering_head.w': torch.ones(1)}
    camera = {'img_backbone.w': torch.zeros(2), 'view_transform.w': torch.zeros(4), 'pts_backbone.w': torch.zeros(3)}
    torch.save(dict(state_dict=lidar), tmp_path / 'l.pth')
    torch.save(dict(state_dict=camera), tmp_path / 'c.pth')
    out = tmp_path / 'merged.pth'
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'merge_pretrained.py'), str(tmp_path / 'l.pth'),
                           str(tmp_path / 'c.pth'), str(out)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    merged = torch.load(out)['state_dict']
    assert set(merged) == {'pts_middle_encoder.w', 'pts_backbone.w', 'pts_neck.w', 'img_backbone.w',
                           'view_transform.w'}
    assert torch.equal(merged['pts_backbone.w'], torch.ones(3))  # the BEV backbone comes from the LiDAR half
    torch.save(dict(state_dict={'img_backbone.w': torch.zeros(2)}), tmp_path / 'cam_only.pth')
    bad = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'merge_pretrained.py'),
                          str(tmp_path / 'cam_only.pth'), str(tmp_path / 'c.pth'), str(tmp_path / 'x.pth')],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and 'LiDAR checkpoint' in bad.stderr and not osp.exists(tmp_path / 'x.pth')


def test_rendering_stays_fp32_under_autocast(tiny_batch):
    """--amp runs the encoders in reduced precision; rendering and curvature scoring still get an fp32 volume
    with autocast off (spconv has no CPU half kernels, so the reduced-precision volume is made by hand)."""
    cfg, item = tiny_batch
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.train()
    seen = {}
    original = model.rendering_head.loss

    def spy(volume, rays):
        seen['dtype'] = volume.dtype
        seen['autocast'] = torch.is_autocast_enabled('cpu')
        return original(volume, rays)
    model.rendering_head.loss = spy
    data = model.data_preprocessor(pseudo_collate([item]), training=True)
    inputs, samples = data['inputs'], data['data_samples']
    cams = model.camera_matrices([s.metainfo for s in samples], inputs['imgs'].shape[1], inputs['imgs'])
    volume = torch.randn(1, 16, 5, 90, 90).to(torch.bfloat16).requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses, _ = model.render_losses(volume, inputs['points'], inputs['raw_imgs'], cams)
    assert seen == dict(dtype=torch.float32, autocast=False)
    assert losses['loss_range'].dtype == torch.float32 and torch.isfinite(losses['loss_range'])
    losses['loss_range'].backward()
    assert volume.grad is not None and volume.grad.dtype == torch.bfloat16

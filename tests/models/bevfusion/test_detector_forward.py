"""Fusion detector (tiny CPU config): lidar-cam forward+backward, predict, LiDAR-only and camera-only."""
import copy
import os

import pytest
import torch
from mmdet3d.registry import MODELS
from mmdet3d.utils import register_all_modules
from mmengine.config import Config

import clap_plugin  # noqa: F401  (registers the modules)
from tests.helpers.bevfusion_inputs import make_batch, torch_threads
from tests.helpers.paths import REPO

register_all_modules(init_default_scope=True)

ROOT = REPO
TINY = os.path.join(ROOT, 'configs', '_base_', 'models', 'bevfusion_cpu-tiny.py')
IMAGE = (128, 352)


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Sparse convolutions on CPU run much faster single-threaded on a busy machine."""
    with torch_threads(1):
        yield


def _tiny_cfg():
    return copy.deepcopy(Config.fromfile(TINY).model)


def _build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _loss_and_grads(model, batch):
    model.train()
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss), log_vars
    model.zero_grad()
    loss.backward()
    return loss, log_vars


def _has_grad(module) -> bool:
    return any(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in module.parameters())


@pytest.fixture(scope='module')
def tiny_model():
    return _build(_tiny_cfg())


def test_lidar_cam_forward_backward_reaches_every_branch(tiny_model):
    model = tiny_model
    batch = make_batch(IMAGE, batch_size=1, num_points=4000, num_boxes=3)
    loss, log_vars = _loss_and_grads(model, batch)
    assert any(k.startswith('loss') and 'heatmap' in k for k in log_vars), sorted(log_vars)
    for name in ('img_backbone', 'img_neck', 'view_transform', 'pts_middle_encoder', 'fusion_layer',
                 'pts_backbone', 'pts_neck', 'bbox_head'):
        assert _has_grad(getattr(model, name)), f'no gradient reaches {name}'
    # the depth input of the view transform is built from the points
    assert _has_grad(model.view_transform.dtransform)


def test_extract_bev_shapes_and_predict(tiny_model):
    model = tiny_model.eval()
    batch = make_batch(IMAGE, batch_size=2, num_points=3000, num_boxes=2, seed=1)
    data = model.data_preprocessor(batch, training=False)
    metas = [s.metainfo for s in data['data_samples']]
    with torch.no_grad():
        bev = model.extract_bev(data['inputs'], metas)
        assert data['inputs']['imgs'].shape == (2, 6, 3, *IMAGE)
        assert bev['camera_bev'].shape == (2, 32, 90, 90)
        assert bev['lidar_bev'].shape == (2, 128, 90, 90)
        assert bev['fused_bev'].shape == (2, 256, 90, 90)
        # samples are independent in eval mode: sample 1 alone gives the same fused BEV
        single = {'points': data['inputs']['points'][1:], 'imgs': data['inputs']['imgs'][1:]}
        torch.testing.assert_close(model.extract_bev(single, metas[1:])['fused_bev'][0], bev['fused_bev'][1],
                                   atol=1e-3, rtol=1e-3)
        results = model(**data, mode='predict')
    assert len(results) == 2
    pred = results[0].pred_instances_3d
    n = len(pred.scores_3d)
    assert n > 0 and pred.bboxes_3d.tensor.shape == (n, 9) and pred.labels_3d.shape == (n, )
    assert torch.all((pred.labels_3d >= 0) & (pred.labels_3d < 10))


def _single_modality_detector(drop, bev_channels):
    """The tiny detector without the modules ``drop`` and the fuser, its BEV backbone reading ``bev_channels``."""
    cfg = _tiny_cfg()
    for key in drop:
        cfg.pop(key)
    cfg.fusion_layer = None
    cfg.pts_backbone.in_channels = bev_channels
    return _build(cfg)


def test_lidar_only_detector():
    model = _single_modality_detector(('img_backbone', 'img_neck', 'view_transform'), 128)
    assert model.img_backbone is None and model.view_transform is None and not model.with_camera
    _, log_vars = _loss_and_grads(model, make_batch(IMAGE, num_points=3000, with_imgs=False, seed=2))
    assert _has_grad(model.pts_middle_encoder) and _has_grad(model.bbox_head)
    model.eval()
    batch = make_batch(IMAGE, num_points=3000, with_imgs=False, seed=3)
    with torch.no_grad():
        data = model.data_preprocessor(batch, training=False)
        bev = model.extract_bev(data['inputs'], [s.metainfo for s in data['data_samples']])
    assert set(bev) == {'lidar_bev', 'fused_bev'} and bev['fused_bev'].shape == (1, 256, 90, 90)


def test_camera_only_detector():
    model = _single_modality_detector(('pts_voxel_encoder', 'pts_middle_encoder', 'voxelize_cfg'), 32)
    assert model.pts_middle_encoder is None and not model.with_lidar
    _loss_and_grads(model, make_batch(IMAGE, with_points=False, seed=4))
    assert _has_grad(model.img_backbone) and _has_grad(model.view_transform.depthnet)
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(make_batch(IMAGE, with_points=False, seed=5), training=False)
        results = model(**data, mode='predict')
        raw = model(**data, mode='tensor')  # head outputs without post-processing
    assert len(results) == 1 and len(results[0].pred_instances_3d.scores_3d) > 0
    assert raw[0]['dense_heatmap'].shape == (1, 10, 90, 90) and raw[0]['center'].shape == (1, 2, 64)


def test_detector_config_errors():
    cfg = _tiny_cfg()
    cfg.fusion_layer = None
    with pytest.raises(ValueError, match='fusion_layer'):
        MODELS.build(cfg)
    cfg = _tiny_cfg()
    cfg.voxelize_cfg['bad_key'] = 1
    with pytest.raises(KeyError, match='bad_key'):
        MODELS.build(cfg)
    cfg = _tiny_cfg()
    cfg.pop('img_neck')
    with pytest.raises(ValueError, match='img_neck'):
        MODELS.build(cfg)


def test_voxelize_cfg_inside_data_preprocessor_like_upstream():
    cfg = _tiny_cfg()
    cfg.data_preprocessor['voxelize_cfg'] = cfg.pop('voxelize_cfg')
    model = MODELS.build(cfg)
    assert model.pts_voxel_layer.grid_size == [720, 720, 40]  # 8 m / 0.2 m; sparse_shape adds one z cell
    assert model.pts_voxel_layer.max_voxels == (60000, 80000)

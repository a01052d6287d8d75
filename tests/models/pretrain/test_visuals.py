"""The pre-trainer's typed visuals, the labelled figures written from them, and the raw images of the batch."""

import cv2
import pytest
import torch
from mmdet3d.registry import MODELS
from mmengine.dataset import pseudo_collate

from clap_plugin.models.pretrain import CLAPPretrainDataPreprocessor, PretrainVisuals
from clap_plugin.visualization import METRIC_PANELS, PANEL_TITLES, metric_history_figure, pretrain_figure, save_figure
from tests.helpers.paths import REPO
from tests.helpers.pretrain import TINY_PRETRAIN, tiny_pretrain_setup

ROOT = REPO
TINY = TINY_PRETRAIN


@pytest.fixture(scope='module')
def model_and_data(synthetic_nus):
    cfg, dataset = tiny_pretrain_setup(synthetic_nus)
    model = MODELS.build(cfg.model)
    model.train()
    data = model.data_preprocessor(pseudo_collate([dataset[0]]), training=True)
    return model, data


def test_batch_carries_the_raw_images(model_and_data):
    model, data = model_and_data
    assert isinstance(model.data_preprocessor, CLAPPretrainDataPreprocessor)  # built from Det3DDataPreprocessor
    imgs, raw = data['inputs']['imgs'], data['inputs']['raw_imgs']
    assert raw.shape == imgs.shape and raw.dtype == torch.float32
    assert float(raw.min()) >= 0.0 and float(raw.max()) <= 1.0 and float(raw.std()) > 0.05
    dp = model.data_preprocessor
    normalised = (raw * 255.0 - dp.mean.view(1, 1, 3, 1, 1)) / dp.std.view(1, 1, 3, 1, 1)
    assert torch.allclose(normalised, imgs, atol=1e-4)  # the same pixels as the network input
    with pytest.raises(ValueError, match='batch_augments'):
        CLAPPretrainDataPreprocessor(batch_augments=[dict(type='BatchSyncRandomResize', random_size_range=(1, 2))])


def test_model_returns_typed_visuals_and_the_figure_has_every_panel(model_and_data, tmp_path):
    model, data = model_and_data
    assert model.pop_visuals() is None  # nothing requested
    model.request_visuals(camera=1, stride=8)
    model.loss(data['inputs'], data['data_samples'])
    vis = model.pop_visuals()
    assert isinstance(vis, PretrainVisuals) and model.pop_visuals() is None  # popped once
    assert model.training  # the preview ran in eval mode and restored the mode
    assert list(vis.point_cloud_range) == model.point_cloud_range
    assert vis.point_inds.shape == (model.ray_selector.num_lidar_rays, )
    cam = vis.camera
    h, w = data['inputs']['imgs'].shape[-2:]
    assert cam.camera == 1 and cam.rgb.shape == cam.rgb_real.shape == (h // 8, w // 8, 3)
    assert cam.range.shape == cam.range_real.shape == (h // 8, w // 8)
    assert float(cam.rgb_real.std()) > 0.02  # the real image shows the scene
    assert torch.isfinite(cam.range_real).any() and torch.isnan(cam.range_real).any()  # LiDAR where it projects
    assert cam.pixel_map.shape == (h, w) and cam.pixels.shape == (model.ray_selector.num_pixels_per_camera, 2)
    proto = vis.prototypes
    assert proto.cells.shape[0] == 2 and proto.assignment.shape == (proto.cells.shape[1], )
    assert int(proto.assignment.max()) < proto.num_prototypes == model.prototype_loss.prototypes.shape[0]

    fig = pretrain_figure(vis, 'a step')
    titles = [ax.get_title() for ax in fig.axes]
    for key, title in PANEL_TITLES.items():
        assert title.format(cam=1) in titles, key
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels.count('range [m]') == 2 and 'probability per pixel' in labels  # colour bars with units
    assert any(lab.startswith('prototype index') for lab in labels)
    bev = next(ax for ax in fig.axes if ax.get_title() == PANEL_TITLES['bev_rays'])
    assert bev.get_xlim() == (model.point_cloud_range[0], model.point_cloud_range[3])  # extent from the range
    path = str(tmp_path / 'step.png')
    save_figure(fig, path)
    img = cv2.imread(path)
    assert img is not None and min(img.shape[:2]) >= 600

    history = {'proto_hard_ppl_lidar': [(1, 3.0), (2, 4.0)], 'proto_swap_agree': [(1, 0.1)]}
    mfig = metric_history_figure(history)
    assert [ax.get_title() for ax in mfig.axes] == list(METRIC_PANELS)
    assert len(mfig.axes[0].get_lines()) == 1 and len(mfig.axes[3].get_lines()) == 0

"""The full-size lidar-cam model (the BEVFusion sizes of arXiv 2412.03059) runs inference on CPU on one sample."""
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
FULL = os.path.join(ROOT, 'configs', '_base_', 'models', 'bevfusion_lidar-cam.py')


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Sparse convolutions on CPU run much faster single-threaded on a busy machine."""
    with torch_threads(1):
        yield


def test_full_size_predict_on_cpu_with_bevfusion_bev_sizes():
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(FULL).model).eval()
    shapes = {}
    for name in ('view_transform', 'pts_middle_encoder', 'fusion_layer', 'pts_neck'):
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple((o[0] if isinstance(o, list) else o).shape)))
    batch = make_batch((256, 704), batch_size=1, num_points=6000, num_boxes=1, seed=7)
    with torch.no_grad():
        data = model.data_preprocessor(batch, training=False)
        results = model(**data, mode='predict')
    assert shapes == {'view_transform': (1, 80, 180, 180), 'pts_middle_encoder': (1, 256, 180, 180),
                      'fusion_layer': (1, 256, 180, 180), 'pts_neck': (1, 512, 180, 180)}
    pred = results[0].pred_instances_3d
    n = len(pred.scores_3d)
    assert 0 < n <= 200 and pred.bboxes_3d.tensor.shape == (n, 9)
    assert torch.isfinite(pred.bboxes_3d.tensor).all() and torch.isfinite(pred.scores_3d).all()

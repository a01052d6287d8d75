"""Every config states one point-cloud range: the model's (``point_cloud_range``), the data pipelines'
(``data_point_cloud_range`` of configs/_base_/datasets/nus-3d_sensors.py: mmengine refuses one key set by two
bases, hence the name) and every nested ``point_cloud_range`` / ``pc_range`` (voxeliser, range filters, rendering
head, TransFusion head and coder) agree."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True) +
                 glob.glob(osp.join(REPO, 'projects', '*', 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in osp.relpath(p, REPO).split(osp.sep))
RANGE_KEYS = ('point_cloud_range', 'data_point_cloud_range')


def _ranges(node, where, out):
    """Collect (place, range as a tuple) of every range entry in a nested dict / list."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in RANGE_KEYS and value is not None:
                out.append((f'{where}.{key}', tuple(float(v) for v in value)))
            elif key == 'pc_range' and value is not None:  # the head's (x0, y0)
                out.append((f'{where}.{key}', tuple(float(v) for v in value)))
            else:
                _ranges(value, f'{where}.{key}', out)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _ranges(value, f'{where}[{i}]', out)
    return out


def test_every_config_is_found():
    assert len(CONFIGS) >= 16


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_point_cloud_ranges_agree(path):
    found = _ranges(Config.fromfile(path).to_dict(), '', [])
    full = [r for _, r in found if len(r) == 6]
    assert full, f'{path} names no point-cloud range'
    reference = full[0]
    bad = [(w, r) for w, r in found if r != (reference if len(r) == 6 else reference[:len(r)])]
    assert not bad, f'ranges differ from {reference}: {bad}'

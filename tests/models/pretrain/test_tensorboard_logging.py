"""The pre-training configs log scalars to TensorBoard next to the local JSON log, offline."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from tests.helpers.paths import REPO

PRETRAIN = sorted(glob.glob(osp.join(REPO, 'configs', '*pretrain*.py')) +
                  glob.glob(osp.join(REPO, 'configs', 'ablations', '*.py')) +
                  glob.glob(osp.join(REPO, 'projects', '*', 'configs', '*.py')))
assert PRETRAIN, f'no pre-training config found under {REPO}'


@pytest.mark.parametrize('path', PRETRAIN, ids=[osp.relpath(p, REPO) for p in PRETRAIN])
def test_pretrain_configs_have_local_and_tensorboard_backends(path):
    backends = [b['type'] for b in Config.fromfile(path).visualizer.vis_backends]
    assert backends == ['LocalVisBackend', 'TensorboardVisBackend']


def test_tensorboard_backend_writes_event_files_offline(tmp_path):
    from mmengine.visualization import Visualizer
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'clap_pretrain_nus_cpu-tiny.py'))
    vis = Visualizer(name='tensorboard_logging_test', vis_backends=cfg.visualizer.vis_backends,
                     save_dir=str(tmp_path))
    vis.add_scalars({'loss': 1.0}, step=1)
    vis.close()
    assert glob.glob(str(tmp_path / 'vis_data' / 'events.out.tfevents.*'))
    assert osp.isfile(tmp_path / 'vis_data' / 'scalars.json')

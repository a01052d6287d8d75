"""Shared fixtures: one small synthetic nuScenes set (with its info files) per test session, and the mmdet3d
registry scope (session-wide default, and per test for the component tests that opt in)."""
import os.path as osp

import pytest
from mmengine.registry import DefaultScope

SYN_SCENES = 2  # scene-0061 (mini_train) and scene-0103 (mini_val)
SYN_SAMPLES = 3
SYN_SWEEPS = 2


@pytest.fixture(scope='session')
def synthetic_nus(tmp_path_factory) -> str:
    """Root of a synthetic v1.0-mini tree with ``nuscenes_infos_{train,val}.pkl`` and ground-truth id maps."""
    from clap_plugin.datasets.nuscenes_converter import create_nuscenes_infos
    from clap_plugin.synthetic import GeneratorConfig, generate

    root = str(tmp_path_factory.mktemp('synthetic') / 'nuscenes')
    generate(GeneratorConfig(root=root, version='v1.0-mini', num_scenes=SYN_SCENES, samples_per_scene=SYN_SAMPLES,
                             seed=7, sweeps=SYN_SWEEPS, save_gt_maps=True), progress=False)
    create_nuscenes_infos(root, root, info_prefix='nuscenes', version='v1.0-mini', max_sweeps=10)
    assert osp.isfile(osp.join(root, 'nuscenes_infos_val.pkl'))
    return root


def nus_data_prefix() -> dict:
    cams = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
    prefix = dict(pts='samples/LIDAR_TOP', sweeps='sweeps/LIDAR_TOP')
    prefix.update({c: f'samples/{c}' for c in cams})
    return prefix


@pytest.fixture(scope='session')
def nus_prefix() -> dict:
    return nus_data_prefix()


@pytest.fixture(scope='session', autouse=True)
def mmdet3d_scope():
    """Register mmdet3d's modules and make 'mmdet3d' the default registry scope, as configs do."""
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import clap_plugin  # noqa: F401


@pytest.fixture
def mmdet3d_default_scope():
    """Build every component of a test in the mmdet3d scope (other tests may leave another default scope).

    The component tests opt in with ``pytestmark = pytest.mark.usefixtures('mmdet3d_default_scope')``."""
    with DefaultScope.overwrite_default_scope('mmdet3d'):
        yield


@pytest.fixture
def single_thread():
    """Tiny tensors: one torch thread avoids OpenMP oversubscription on a shared CPU (opt in with
    ``pytestmark = pytest.mark.usefixtures('single_thread')``)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

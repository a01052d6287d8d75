"""The synthetic nuScenes tree is a real nuScenes tree: devkit geometry, calibration and mmdet3d's tools agree."""
import os.path as osp

import numpy as np
import pytest
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.data_classes import Box
from nuscenes.utils.geometry_utils import points_in_box
from pyquaternion import Quaternion

CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')


@pytest.fixture(scope='module')
def nusc(synthetic_nus):
    return NuScenes(version='v1.0-mini', dataroot=synthetic_nus, verbose=False)


def _sensor_to_global(nusc, sd_token):
    sd = nusc.get('sample_data', sd_token)
    cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
    pose = nusc.get('ego_pose', sd['ego_pose_token'])

    def mat(rec):
        m = np.eye(4)
        m[:3, :3] = Quaternion(rec['rotation']).rotation_matrix
        m[:3, 3] = rec['translation']
        return m
    return mat(pose) @ mat(cs), cs


def _lidar_points_global(nusc, root, sd_token):
    sd = nusc.get('sample_data', sd_token)
    pts = np.fromfile(osp.join(root, sd['filename']), dtype=np.float32).reshape(-1, 5)
    l2g, _ = _sensor_to_global(nusc, sd_token)
    return pts, pts[:, :3].astype(np.float64) @ l2g[:3, :3].T + l2g[:3, 3]


def test_tables_layout(synthetic_nus, nusc):
    assert len(nusc.scene) == 2
    assert {s['name'] for s in nusc.scene} == {'scene-0061', 'scene-0103'}
    for sample in nusc.sample:
        assert set(sample['data']) == {'LIDAR_TOP', *CAMERAS}
        for cam in CAMERAS:
            sd = nusc.get('sample_data', sample['data'][cam])
            assert (sd['width'], sd['height']) == (1600, 900)
    # sweeps are chained before each keyframe
    sd = nusc.get('sample_data', nusc.sample[1]['data']['LIDAR_TOP'])
    prev = nusc.get('sample_data', sd['prev'])
    assert not prev['is_key_frame'] and prev['filename'].startswith('sweeps/LIDAR_TOP/')
    assert 0 < sd['timestamp'] - prev['timestamp'] <= 60_000
    cats = {nusc.get('category', i['category_token'])['name'] for i in nusc.instance}
    assert len(cats) == 10  # one category per nuScenes detection class
    assert {v['token'] for v in nusc.visibility} == {'1', '2', '3', '4'}


def test_num_lidar_pts_matches_devkit_geometry(synthetic_nus, nusc):
    """devkit points_in_box on keyframe points moved to the global frame gives every annotation's count."""
    checked = nonzero = 0
    for sample in nusc.sample:
        _, pts_g = _lidar_points_global(nusc, synthetic_nus, sample['data']['LIDAR_TOP'])
        for ann_token in sample['anns']:
            ann = nusc.get('sample_annotation', ann_token)
            box = Box(ann['translation'], ann['size'], Quaternion(ann['rotation']))
            count = int(points_in_box(box, pts_g.T).sum())
            assert count == ann['num_lidar_pts'], (ann_token, count, ann['num_lidar_pts'])
            checked += 1
            nonzero += count > 0
    assert checked > 50 and nonzero > 20


def test_camera_and_lidar_see_the_same_surface(synthetic_nus, nusc):
    """Points projected through the tables (ego pose at the camera timestamp) land on pixels that show the
    surface the LiDAR ray hit, for at least 95% of the points."""
    agree = total = 0
    for sample in nusc.sample:
        lidar_sd = sample['data']['LIDAR_TOP']
        pts, pts_g = _lidar_points_global(nusc, synthetic_nus, lidar_sd)
        lidar_ids = np.load(osp.join(synthetic_nus, 'synthetic_gt', lidar_sd + '.npz'))['object_id']
        assert len(lidar_ids) == len(pts)
        for cam in CAMERAS:
            cam_sd = sample['data'][cam]
            c2g, cs = _sensor_to_global(nusc, cam_sd)
            g2c = np.linalg.inv(c2g)
            p_cam = pts_g @ g2c[:3, :3].T + g2c[:3, 3]
            uvw = p_cam @ np.asarray(cs['camera_intrinsic']).T
            front = p_cam[:, 2] > 1.0
            uv = np.floor(uvw[front, :2] / uvw[front, 2:3]).astype(int)
            inside = (uv[:, 0] >= 0) & (uv[:, 0] < 1600) & (uv[:, 1] >= 0) & (uv[:, 1] < 900)
            gt = np.load(osp.join(synthetic_nus, 'synthetic_gt', cam_sd + '.npz'))
            pix_ids = gt['object_id'][uv[inside, 1], uv[inside, 0]]
            pix_depth = gt['depth'][uv[inside, 1], uv[inside, 0]]
            pt_ids = lidar_ids[front][inside]
            pt_depth = p_cam[front][inside, 2]
            same = (pix_ids == pt_ids) & (np.abs(pix_depth - pt_depth) < 0.05 * pt_depth + 0.1)
            agree += int(same.sum())
            total += int(inside.sum())
    assert total > 10000
    assert agree / total >= 0.95, agree / total


def test_images_show_the_scene(synthetic_nus, nusc):
    """Rendered images are not blank: sky above, structured road below, objects with their own colours."""
    import cv2
    sd = nusc.get('sample_data', nusc.sample[0]['data']['CAM_FRONT'])
    img = cv2.imread(osp.join(synthetic_nus, sd['filename']))
    assert img.shape == (900, 1600, 3)
    assert img[:100].mean() > img[-100:].mean()  # bright sky, darker asphalt
    assert img.std() > 20


def test_generation_is_deterministic(tmp_path):
    from clap_plugin.synthetic import GeneratorConfig, generate
    roots = []
    for name in ('a', 'b'):
        root, _ = generate(GeneratorConfig(root=str(tmp_path / name), num_scenes=1, samples_per_scene=2, seed=3,
                                           sweeps=1, image_size=(160, 90)), progress=False)
        roots.append(root)
    for table in ('sample_annotation', 'sample_data', 'ego_pose', 'scene'):
        a = open(osp.join(roots[0], 'v1.0-mini', f'{table}.json')).read()
        b = open(osp.join(roots[1], 'v1.0-mini', f'{table}.json')).read()
        assert a == b, table
    nusc = NuScenes(version='v1.0-mini', dataroot=roots[0], verbose=False)
    for sd in nusc.sample_data:
        assert open(osp.join(roots[0], sd['filename']), 'rb').read() == \
            open(osp.join(roots[1], sd['filename']), 'rb').read()

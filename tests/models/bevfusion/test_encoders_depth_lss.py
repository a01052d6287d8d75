"""LSS depth view transform: frustum geometry, LiDAR depth image and BEV pooling agree with the cameras."""
import math

import numpy as np
import pytest
import torch

from clap_plugin.models.bevfusion import CLAPDepthLSSTransform
from tests.helpers.bevfusion_inputs import camera_metas

IMAGE = (64, 176)
FEAT = (8, 22)


def _transform(**kw):
    cfg = dict(in_channels=16, out_channels=6, image_size=IMAGE, feature_size=FEAT, xbound=[-54.0, 54.0, 0.6],
               ybound=[-54.0, 54.0, 0.6], zbound=[-10.0, 10.0, 20.0], dbound=[1.0, 60.0, 2.0], downsample=1)
    cfg.update(kw)
    return CLAPDepthLSSTransform(**cfg).eval()


def _lidar_aug(yaw=0.3, scale=1.05, trans=(0.7, -0.4, 0.1), flip=True):
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) * scale
    if flip:  # horizontal flip of the y axis, as BEVFusionRandomFlip3D does
        rot = np.diag([1.0, -1.0, 1.0]) @ rot
    aug = np.eye(4)
    aug[:3, :3] = rot
    aug[:3, 3] = trans
    return aug


def _mats(lidar_aug):
    m = camera_metas(IMAGE, lidar_aug)
    t = {k: torch.tensor(v, dtype=torch.float64)[None] for k, v in m.items()}
    return t


def _project(p_aug, mats):
    """Augmented LiDAR points (N, P, 3) of each camera -> (u, v) augmented pixels and depth."""
    aug = mats['lidar_aug_matrix'][0]
    p = (p_aug - aug[:3, 3]) @ torch.inverse(aug[:3, :3]).T
    l2i = mats['lidar2img'][0]
    cam = torch.einsum('nij,npj->npi', l2i[:, :3, :3], p) + l2i[:, None, :3, 3]
    d = cam[..., 2]
    uv = cam[..., :2] / d[..., None]
    ia = mats['img_aug_matrix'][0]
    uv = torch.einsum('nij,npj->npi', ia[:, :2, :2], uv) + ia[:, None, :2, 3]
    return uv, d


def test_frustum_geometry_projects_back_to_its_pixel_and_depth():
    vt = _transform().double()
    mats = _mats(_lidar_aug())
    geom = vt.get_geometry(mats['cam2lidar'], mats['cam2img'], mats['img_aug_matrix'], mats['lidar_aug_matrix'])
    assert geom.shape == (1, 6, vt.D, *FEAT, 3)
    uv, d = _project(geom[0].reshape(6, -1, 3), mats)
    fr = vt.frustum.reshape(-1, 3).double()
    torch.testing.assert_close(uv, fr[None, :, :2].expand(6, -1, -1), atol=1e-6, rtol=0)
    torch.testing.assert_close(d, fr[None, :, 2].expand(6, -1), atol=1e-6, rtol=0)


def _backproject(mats, cam, u, v, d):
    """Augmented-LiDAR point seen by camera ``cam`` at augmented pixel (u, v) with depth d (float64)."""
    ia = mats['img_aug_matrix'][0, cam]
    uo, vo = torch.linalg.solve(ia[:2, :2], torch.tensor([u, v], dtype=torch.float64) - ia[:2, 3]).tolist()
    p_cam = d * torch.inverse(mats['cam2img'][0, cam, :3, :3]) @ torch.tensor([uo, vo, 1.0], dtype=torch.float64)
    p = mats['cam2lidar'][0, cam] @ torch.cat([p_cam, torch.ones(1, dtype=torch.float64)])
    return (mats['lidar_aug_matrix'][0] @ p)[:3]


def test_depth_image_marks_projected_points_nearest_first():
    vt = _transform()
    mats = _mats(_lidar_aug())
    # two points on the ray of pixel (row 20, col 41) of camera 1, and one behind camera 4
    near = _backproject(mats, 1, 41.5, 20.5, 12.0)
    far = _backproject(mats, 1, 41.5, 20.5, 30.0)
    behind = _backproject(mats, 4, 100.5, 30.5, -8.0)
    side = _backproject(mats, 3, 7.5, 60.5, 5.0)
    pts = torch.cat([torch.stack([far, near, behind, side]).float(), torch.zeros(4, 2)], dim=1)
    f = {k: v.float() for k, v in mats.items()}
    depth = vt.depth_image([pts], f['lidar2img'], f['img_aug_matrix'], f['lidar_aug_matrix'], 6)
    assert depth.shape == (1, 6, 1, *IMAGE)
    pix = depth[0, 1, 0]
    assert torch.nonzero(pix).tolist() == [[20, 41]]  # the far point is hidden behind the near one
    assert float(pix[20, 41]) == pytest.approx(12.0, abs=1e-3)
    assert torch.nonzero(depth[0, 3, 0]).tolist() == [[60, 7]]
    assert float(depth[0, 3, 0, 60, 7]) == pytest.approx(5.0, abs=1e-3)
    assert int((depth[0, 4] > 0).sum()) == 0  # nothing from behind the camera
    # without points (camera-only) the depth input is empty
    assert torch.count_nonzero(vt.depth_image(None, f['lidar2img'], f['img_aug_matrix'],
                                              f['lidar_aug_matrix'], 6)) == 0


@pytest.mark.parametrize('cell_index', ['trunc', 'floor'])
def test_pool_equals_naive_loop_over_frustum_points(cell_index):
    vt = _transform(cell_index=cell_index, dbound=[1.0, 60.0, 4.0]).double()
    mats = _mats(_lidar_aug(trans=(0.7, -0.4, -3.0)))
    geom = vt.get_geometry(mats['cam2lidar'], mats['cam2img'], mats['img_aug_matrix'], mats['lidar_aug_matrix'])
    gen = torch.Generator().manual_seed(5)
    feats = torch.rand(*geom.shape[:-1], vt.C, generator=gen, dtype=torch.float64)
    bev = vt.pool(geom, feats)  # (1, C, 180, 180), Z = 1
    assert bev.shape == (1, vt.C, 180, 180)
    # naive reference: one Python iteration per frustum point
    to_int = math.trunc if cell_index == 'trunc' else math.floor
    ref = np.zeros((vt.C, 180, 180))
    lo = np.array([-54.0, -54.0, -10.0])
    size = np.array([0.6, 0.6, 20.0])
    kept = below = 0
    for p, f in zip(geom.reshape(-1, 3).numpy(), feats.reshape(-1, vt.C).numpy()):
        ix, iy, iz = (to_int(v) for v in (p - lo) / size)
        below += int(-30.0 < p[2] < -10.0)
        if 0 <= ix < 180 and 0 <= iy < 180 and iz == 0:
            ref[:, ix, iy] += f
            kept += 1
    assert 0 < kept < geom[..., 0].numel() and below > 0  # some points fall outside, some just below z
    torch.testing.assert_close(bev[0], torch.from_numpy(ref), rtol=0, atol=1e-9)


def test_trunc_cell_index_keeps_points_one_cell_below_the_range():
    mats = {k: v.float() for k, v in _mats(_lidar_aug(trans=(0.0, 0.0, -3.0))).items()}
    out = {}
    for mode in ('trunc', 'floor'):
        vt = _transform(cell_index=mode)
        geom = vt.get_geometry(mats['cam2lidar'], mats['cam2img'], mats['img_aug_matrix'],
                               mats['lidar_aug_matrix'])
        out[mode] = vt.pool(geom, torch.ones(*geom.shape[:-1], 1).expand(-1, -1, -1, -1, -1, vt.C))[0, 0].sum()
        z, xy = geom[..., 2], geom[..., :2]
        n_floor = int(((xy >= -54).all(-1) & (xy < 54).all(-1) & (z >= -10) & (z < 10)).sum())
        # truncation toward zero: one more cell below each lower bound (0.6 m in x, y; 20 m in z)
        n_trunc = int(((xy > -54.6).all(-1) & (xy < 54).all(-1) & (z > -30) & (z < 10)).sum())
    assert float(out['floor']) == pytest.approx(n_floor, abs=2)
    assert float(out['trunc']) == pytest.approx(n_trunc, abs=2) and n_trunc > n_floor
    with pytest.raises(ValueError, match='cell_index'):
        _transform(cell_index='round')


def test_view_transform_forward_shapes_and_gradients():
    vt = _transform(downsample=2).train()
    mats = {k: v.float() for k, v in _mats(_lidar_aug()).items()}
    x = torch.randn(1, 6, 16, *FEAT, requires_grad=True)
    pts = [torch.cat([(torch.rand(500, 3) - 0.5) * torch.tensor([80.0, 80.0, 4.0]), torch.zeros(500, 2)], 1)]
    out = vt(x, pts, mats['lidar2img'], mats['cam2img'], mats['cam2lidar'], mats['img_aug_matrix'],
             mats['lidar_aug_matrix'])
    assert out.shape == (1, 6, 90, 90)
    out.square().mean().backward()
    assert x.grad is not None and torch.count_nonzero(x.grad) > 0
    assert vt.dtransform[0].weight.grad is not None and torch.count_nonzero(vt.dtransform[0].weight.grad) > 0
    with pytest.raises(ValueError, match='feature_size'):
        vt(torch.zeros(1, 6, 16, 4, 4), pts, mats['lidar2img'], mats['cam2img'], mats['cam2lidar'],
           mats['img_aug_matrix'], mats['lidar_aug_matrix'])
    with pytest.raises(ValueError, match='downsample'):
        _transform(downsample=3)

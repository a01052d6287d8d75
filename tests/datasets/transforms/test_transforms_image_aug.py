"""CLAPImageAug3D: a LiDAR point's projection moves exactly as the image content does."""
import numpy as np
import pytest

import clap_plugin  # noqa: F401  (registers the transforms)
from clap_plugin.datasets.transforms import CLAPImageAug3D, image_aug_affine, warp_image
from tests.helpers.cameras import front_camera

H, W = 900, 1600
GRAD = np.array([[0.05, 0.02], [0.03, -0.04], [-0.02, 0.06]])  # per channel d/du, d/dv
OFFSET = np.array([10.0, 80.0, 30.0])


def ramp(u, v):
    """Colour of continuous pixel position (u, v): a linear function per channel."""
    return np.stack([GRAD[c, 0] * u + GRAD[c, 1] * v + OFFSET[c] for c in range(3)], axis=-1)


def ramp_image():
    vs, us = np.mgrid[0:H, 0:W].astype(np.float64) + 0.5  # pixel centres
    return ramp(us, vs).astype(np.float32)


def project(lidar2img, pts):
    """(N, 3) LiDAR points -> (N, 2) pixels and (N,) depths."""
    h = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ lidar2img.T
    return h[:, :2] / h[:, 2:3], h[:, 2]


def model_style_pixels(pts, lidar2img, img_aug):
    """BEVFusion's depth projection: lidar2img, divide by depth, then img_aug on (u, v, d)."""
    uv, d = project(lidar2img, pts)
    uvd = np.concatenate([uv, d[:, None]], axis=1)
    return (uvd @ img_aug[:3, :3].T + img_aug[:3, 3])[:, :2]


def test_affine_known_answer_test_mode():
    aug = CLAPImageAug3D(final_dim=(256, 704), resize_lim=(0.48, 0.48), bot_pct_lim=(0.0, 0.0),
                         rot_lim=(0.0, 0.0), rand_flip=False, is_train=False)
    params = aug.sample_augmentation(H, W)
    assert params['crop'] == (32, 176) and not params['flip'] and params['rotate'] == 0
    m = image_aug_affine(params['resize'], params['crop'], (256, 704), False, 0.0)
    assert np.allclose(m, [[0.48, 0, -32], [0, 0.48, -176], [0, 0, 1]])
    flipped = image_aug_affine(0.5, (10, 20), (256, 704), True, 0.0)
    assert np.allclose(flipped @ [100, 100, 1], [704 - (50 - 10), 50 - 20, 1])
    rotated = image_aug_affine(1.0, (0, 0), (256, 704), False, 90.0)
    assert np.allclose(rotated @ [352, 128, 1], [352, 128, 1])  # the centre is fixed


@pytest.mark.parametrize('flip,rotate', [(False, 0.0), (True, 0.0), (False, 4.0), (True, -5.0)])
def test_warp_equals_affine(flip, rotate):
    img = ramp_image()
    m = image_aug_affine(0.44, (40, 130), (256, 704), flip, rotate)
    out = warp_image(img, m, (256, 704))
    assert out.shape == (256, 704, 3)
    minv = np.linalg.inv(m)
    ls, ks = np.mgrid[8:248:7, 8:696:11]
    centres = np.stack([ks.ravel() + 0.5, ls.ravel() + 0.5, np.ones(ks.size)])
    src = minv @ centres
    inside = (src[0] > 4) & (src[0] < W - 4) & (src[1] > 4) & (src[1] < H - 4)
    assert inside.sum() > 500
    expected = ramp(src[0], src[1])[inside]
    got = out[ls.ravel(), ks.ravel()][inside]
    assert np.abs(got - expected).max() < 0.02


def test_point_projection_follows_image_augmentation():
    img = ramp_image()
    lidar2img = front_camera()[2]
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(5, 40, 4000), rng.uniform(-15, 15, 4000),
                    rng.uniform(-1.5, 2.0, 4000)], axis=1)
    uv, depth = project(lidar2img, pts)
    ok = (depth > 1) & (uv[:, 0] > 5) & (uv[:, 0] < W - 5) & (uv[:, 1] > 5) & (uv[:, 1] < H - 5)
    pts, uv = pts[ok], uv[ok]
    aug = CLAPImageAug3D(final_dim=(256, 704), resize_lim=(0.38, 0.55), bot_pct_lim=(0.0, 0.0),
                         rot_lim=(-5.4, 5.4), rand_flip=True, is_train=True)
    flips = set()
    for seed in range(6):
        np.random.seed(seed)
        results = dict(img=[img.copy(), img.copy()], lidar2img=np.stack([lidar2img] * 2))
        results = aug(results)
        assert results['img_shape'] == (256, 704)
        assert results['img_aug_matrix'].shape == (2, 4, 4)
        for cam in range(2):
            m = results['img_aug_matrix'][cam].astype(np.float64)
            flips.add(bool(np.linalg.det(m[:2, :2]) < 0))
            new_uv = model_style_pixels(pts, lidar2img, m)
            vis = ((new_uv[:, 0] > 2) & (new_uv[:, 0] < 702) & (new_uv[:, 1] > 2) &
                   (new_uv[:, 1] < 254))
            assert vis.sum() > 100
            k = np.floor(new_uv[vis]).astype(int)
            got = results['img'][cam][k[:, 1], k[:, 0]]
            expected = ramp(uv[vis, 0], uv[vis, 1])
            # the pixel holding the point is at most half a (scaled) pixel diagonal away
            scale = np.sqrt(abs(np.linalg.det(m[:2, :2])))
            tol = np.abs(GRAD).sum(1).max() * 0.6 / scale + 0.02
            assert np.abs(got - expected).max() < tol
    assert flips == {True, False}


def test_img_aug_matrix_composes_with_previous():
    img = ramp_image()[:, :, :1].copy()
    prev = np.eye(4)
    prev[:2, 3] = [5.0, -3.0]
    aug = CLAPImageAug3D(final_dim=(256, 704), resize_lim=(0.48, 0.48), is_train=False)
    out = aug(dict(img=[img], img_aug_matrix=np.stack([prev])))
    m = image_aug_affine(0.48, (32, 176), (256, 704), False, 0.0)
    expected = np.eye(4)
    expected[:2, :2], expected[:2, 3] = m[:2, :2], m[:2, 2]
    assert np.allclose(out['img_aug_matrix'][0], expected @ prev, atol=1e-5)
    assert out['img'][0].shape == (256, 704, 1)


def test_bad_arguments():
    with pytest.raises(ValueError, match='resize_lim'):
        CLAPImageAug3D(final_dim=(256, 704), resize_lim=(0.6, 0.4))
    with pytest.raises(KeyError, match='img'):
        CLAPImageAug3D(final_dim=(256, 704), resize_lim=(0.4, 0.4))(dict())

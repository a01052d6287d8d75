"""BEVFusion's per-camera image augmentation (resize, crop, flip, rotate) with ``img_aug_matrix``.

Pixel coordinates are continuous with pixel ``i`` covering ``[i, i + 1)``. The augmentation is the
2D affine map ``p' = M p``: scale by ``resize``, shift by the crop origin, mirror ``x -> W_out - x``
when flipped, then rotate by ``rotate`` degrees about the output centre with
``[[cos, sin], [-sin, cos]]`` (BEVFusion's parameterisation). Each image is warped with exactly this
map, so a LiDAR point at pixel ``p`` of the original image is at ``M p`` in the augmented image.

``lidar2img`` / ``cam2img`` stay the original calibration; ``img_aug_matrix`` (N, 4, 4) holds ``M`` in
its upper-left 2x2 block and first two rows of the last column, as BEVFusion's view transform expects.
"""
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS


def image_aug_affine(resize: float, crop: Tuple[int, int], final_dim: Sequence[int], flip: bool,
                     rotate_deg: float) -> np.ndarray:
    """3x3 homogeneous 2D map from original to augmented continuous pixel coordinates.

    Args:
        resize: scale factor.
        crop: ``(x0, y0)`` of the crop window in the resized image.
        final_dim: ``(H_out, W_out)``.
        flip: mirror horizontally after cropping.
        rotate_deg: rotation in degrees about the output image centre.
    """
    h_out, w_out = final_dim
    m = np.diag([resize, resize, 1.0])
    m[:2, 2] = -np.asarray(crop, dtype=np.float64)
    if flip:
        m = np.array([[-1.0, 0.0, w_out], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ m
    theta = np.deg2rad(rotate_deg)
    rot = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    center = np.array([w_out / 2.0, h_out / 2.0])
    r = np.eye(3)
    r[:2, :2] = rot
    r[:2, 2] = center - rot @ center
    return r @ m


def warp_image(img: np.ndarray, affine: np.ndarray, out_hw: Sequence[int]) -> np.ndarray:
    """Warp ``img`` (H, W, C) by the continuous-coordinate map ``affine`` (3x3) into ``out_hw``.

    Downscaling first goes through an area resize (anti-aliasing); the remaining map is applied with
    bilinear interpolation and zero fill, so the composite equals ``affine`` exactly.
    """
    h, w = img.shape[:2]
    h_out, w_out = int(out_hw[0]), int(out_hw[1])
    scale = np.sqrt(abs(np.linalg.det(affine[:2, :2])))
    src = img
    pre = np.eye(3)
    if scale < 1.0:
        new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        src = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_AREA)
        pre = np.diag([new_w / w, new_h / h, 1.0])
    residual = affine @ np.linalg.inv(pre)
    # continuous coordinates -> pixel-index coordinates (index i has its centre at i + 0.5)
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    residual_idx = np.linalg.inv(shift) @ residual @ shift
    out = cv2.warpAffine(
        src, residual_idx[:2].astype(np.float64), (w_out, h_out), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if out.ndim == 2 and img.ndim == 3:
        out = out[..., None]
    return out


@TRANSFORMS.register_module()
class CLAPImageAug3D(BaseTransform):
    """Random (train) or fixed (test) resize / crop / flip / rotate per camera.

    Args:
        final_dim: output ``(H, W)``.
        resize_lim: range of the resize factor (test: its mean).
        bot_pct_lim: range of the fraction cut from the image bottom (test: its mean).
        rot_lim: rotation range in degrees (test: 0).
        rand_flip: flip with probability 0.5 in training.
        is_train: random (True) or deterministic (False) augmentation.
    """

    def __init__(self, final_dim: Sequence[int], resize_lim: Sequence[float],
                 bot_pct_lim: Sequence[float] = (0.0, 0.0), rot_lim: Sequence[float] = (0.0, 0.0),
                 rand_flip: bool = False, is_train: bool = False) -> None:
        if len(final_dim) != 2:
            raise ValueError(f'final_dim must be (H, W), got {final_dim}')
        for name, lim in (('resize_lim', resize_lim), ('bot_pct_lim', bot_pct_lim),
                          ('rot_lim', rot_lim)):
            if len(lim) != 2 or lim[0] > lim[1]:
                raise ValueError(f'{name} must be (low, high) with low <= high, got {lim}')
        self.final_dim = tuple(int(v) for v in final_dim)
        self.resize_lim = tuple(resize_lim)
        self.bot_pct_lim = tuple(bot_pct_lim)
        self.rot_lim = tuple(rot_lim)
        self.rand_flip = rand_flip
        self.is_train = is_train

    def sample_augmentation(self, h: int, w: int) -> Dict:
        """Draw ``resize``, ``crop`` (x0, y0), ``flip`` and ``rotate`` (degrees) for an (h, w) image."""
        f_h, f_w = self.final_dim
        if self.is_train:
            resize = float(np.random.uniform(*self.resize_lim))
            new_w, new_h = int(w * resize), int(h * resize)
            crop_y = int((1 - np.random.uniform(*self.bot_pct_lim)) * new_h) - f_h
            crop_x = int(np.random.uniform(0, max(0, new_w - f_w)))
            flip = bool(self.rand_flip and np.random.choice([0, 1]))
            rotate = float(np.random.uniform(*self.rot_lim))
        else:
            resize = float(np.mean(self.resize_lim))
            new_w, new_h = int(w * resize), int(h * resize)
            crop_y = int((1 - np.mean(self.bot_pct_lim)) * new_h) - f_h
            crop_x = int(max(0, new_w - f_w) / 2)
            flip = False
            rotate = 0.0
        return dict(resize=resize, crop=(crop_x, crop_y), flip=flip, rotate=rotate)

    def transform(self, results: dict) -> dict:
        """Augment ``results['img']`` (list of (H, W, C)) and compose ``img_aug_matrix``."""
        if 'img' not in results:
            raise KeyError("CLAPImageAug3D needs results['img'] (load the cameras first)")
        imgs = results['img']
        prev = results.get('img_aug_matrix', None)
        new_imgs, mats = [], []
        for i, img in enumerate(imgs):
            h, w = img.shape[:2]
            aug = self.sample_augmentation(h, w)
            affine = image_aug_affine(aug['resize'], aug['crop'], self.final_dim, aug['flip'],
                                      aug['rotate'])
            new_imgs.append(warp_image(img, affine, self.final_dim))
            mat = np.eye(4)
            mat[:2, :2] = affine[:2, :2]
            mat[:2, 3] = affine[:2, 2]
            if prev is not None:
                mat = mat @ np.asarray(prev[i], dtype=np.float64)
            mats.append(mat)
        results['img'] = new_imgs
        results['img_aug_matrix'] = np.stack(mats).astype(np.float32)
        results['img_shape'] = self.final_dim
        results['pad_shape'] = self.final_dim
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(final_dim={self.final_dim}, '
                f'resize_lim={self.resize_lim}, bot_pct_lim={self.bot_pct_lim}, '
                f'rot_lim={self.rot_lim}, rand_flip={self.rand_flip}, is_train={self.is_train})')

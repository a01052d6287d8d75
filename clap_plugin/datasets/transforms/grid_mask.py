"""GridMask image augmentation (BEVFusion's variant): zero periodic row / column stripes of all views."""
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS


def grid_mask(h: int, w: int, period: int, length: int, start_h: int, start_w: int, use_h: bool,
              use_w: bool, rotate_deg: float = 0.0) -> np.ndarray:
    """Keep-mask (h, w) of 1s with 0-stripes of ``length`` every ``period`` pixels.

    The stripes are drawn on a 1.5x larger canvas starting at ``start_h`` / ``start_w``, optionally
    rotated about its centre, and the central (h, w) window is returned.
    """
    hh, ww = int(1.5 * h), int(1.5 * w)
    mask = np.ones((hh, ww), np.float32)
    if use_h:
        for s in range(start_h, hh, period):
            mask[s:min(s + length, hh), :] = 0
    if use_w:
        for s in range(start_w, ww, period):
            mask[:, s:min(s + length, ww)] = 0
    if rotate_deg:
        rot = cv2.getRotationMatrix2D((ww / 2.0, hh / 2.0), rotate_deg, 1.0)
        mask = cv2.warpAffine(mask, rot, (ww, hh), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    top, left = (hh - h) // 2, (ww - w) // 2
    return mask[top:top + h, left:left + w]


@TRANSFORMS.register_module()
class CLAPGridMask(BaseTransform):
    """Multiply every camera image by the same random grid mask with probability ``prob``.

    Args:
        use_h: draw horizontal stripes (rows).
        use_w: draw vertical stripes (columns).
        max_epoch: epoch at which ``prob`` reaches its set value when ``fixed_prob`` is False.
        rotate: rotation drawn uniformly from ``[0, rotate)`` integer degrees.
        offset: fill masked pixels with uniform noise in [-1, 1] instead of 0.
        ratio: stripe length / period (1 draws the length at random).
        mode: 0 zeros the stripes, 1 keeps only the stripes.
        prob: probability of applying the mask.
        fixed_prob: keep ``prob`` constant instead of ramping it up with ``set_epoch``.
    """

    def __init__(self, use_h: bool = True, use_w: bool = True, max_epoch: int = 1,
                 rotate: int = 1, offset: bool = False, ratio: float = 0.5, mode: int = 0,
                 prob: float = 1.0, fixed_prob: bool = False) -> None:
        if mode not in (0, 1):
            raise ValueError(f'mode must be 0 or 1, got {mode}')
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f'ratio must be in (0, 1], got {ratio}')
        if rotate < 1:
            raise ValueError(f'rotate must be >= 1 (exclusive upper bound), got {rotate}')
        self.use_h = use_h
        self.use_w = use_w
        self.max_epoch = max_epoch
        self.rotate = rotate
        self.offset = offset
        self.ratio = ratio
        self.mode = mode
        self.st_prob = prob
        self.prob = prob
        self.fixed_prob = fixed_prob
        self.epoch: Optional[int] = None

    def set_epoch(self, epoch: int) -> None:
        """Ramp ``prob`` linearly to its set value over ``max_epoch`` (unless ``fixed_prob``)."""
        self.epoch = epoch
        if not self.fixed_prob:
            self.prob = self.st_prob * min(epoch / max(self.max_epoch, 1), 1.0)

    def transform(self, results: dict) -> dict:
        """Mask ``results['img']`` (list of (H, W, C) arrays)."""
        if np.random.rand() > self.prob:
            return results
        imgs = results['img']
        h, w = imgs[0].shape[:2]
        period = np.random.randint(2, max(min(h, w), 3))
        if self.ratio == 1:
            length = np.random.randint(1, period)
        else:
            length = min(max(int(period * self.ratio + 0.5), 1), period - 1)
        start_h, start_w = np.random.randint(period), np.random.randint(period)
        rotate = np.random.randint(self.rotate)
        mask = grid_mask(h, w, period, length, start_h, start_w, self.use_h, self.use_w, rotate)
        if self.mode == 1:
            mask = 1 - mask
        mask = mask[:, :, None]
        if self.offset:
            noise = (2 * (np.random.rand(h, w, 1) - 0.5)).astype(np.float32) * (1 - mask)
            results['img'] = [img * mask + noise for img in imgs]
        else:
            results['img'] = [(img * mask).astype(img.dtype) for img in imgs]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(use_h={self.use_h}, use_w={self.use_w}, '
                f'ratio={self.ratio}, mode={self.mode}, prob={self.prob}, rotate={self.rotate})')

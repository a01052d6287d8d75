"""Global rotation -> translation -> scaling of the LiDAR scene (BEVFusion's order), recorded in
``lidar_aug_matrix``.

``lidar_aug_matrix`` (4x4) maps original LiDAR coordinates to augmented ones; ``lidar2img`` stays the
original calibration, so an augmented point ``p'`` projects with ``lidar2img @ inv(lidar_aug_matrix) p'``
(then ``img_aug_matrix``), which is how BEVFusion's view transform uses them.
"""
from typing import Sequence, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures import rotation_3d_in_axis


def compose_lidar_aug(results: dict, mat: np.ndarray) -> None:
    """Left-multiply ``results['lidar_aug_matrix']`` (identity if absent) by the 4x4 ``mat``."""
    prev = np.asarray(results.get('lidar_aug_matrix', np.eye(4)), dtype=np.float64)
    results['lidar_aug_matrix'] = (mat @ prev).astype(np.float32)


@TRANSFORMS.register_module()
class CLAPGlobalRotScaleTrans(BaseTransform):
    """Rotate about z, translate, then scale points and ``gt_bboxes_3d``.

    Args:
        rot_range: yaw range (radians) or a half-width.
        scale_ratio_range: scale range.
        translation_std: std of the Gaussian translation per axis (metres) or one value.
        shift_height: also scale the ``height`` point attribute.
    """

    def __init__(self,
                 rot_range: Union[float, Sequence[float]] = (-0.78539816, 0.78539816),
                 scale_ratio_range: Sequence[float] = (0.95, 1.05),
                 translation_std: Union[float, Sequence[float]] = (0.0, 0.0, 0.0),
                 shift_height: bool = False) -> None:
        if np.isscalar(rot_range):
            rot_range = (-float(rot_range), float(rot_range))
        if np.isscalar(translation_std):
            translation_std = (float(translation_std), ) * 3
        if len(rot_range) != 2 or rot_range[0] > rot_range[1]:
            raise ValueError(f'rot_range must be (low, high), got {rot_range}')
        if len(scale_ratio_range) != 2 or not 0 < scale_ratio_range[0] <= scale_ratio_range[1]:
            raise ValueError(f'scale_ratio_range must be (low, high) > 0, got {scale_ratio_range}')
        if len(translation_std) != 3 or any(s < 0 for s in translation_std):
            raise ValueError(f'translation_std must be 3 values >= 0, got {translation_std}')
        self.rot_range = tuple(float(v) for v in rot_range)
        self.scale_ratio_range = tuple(float(v) for v in scale_ratio_range)
        self.translation_std = np.asarray(translation_std, dtype=np.float32)
        self.shift_height = shift_height

    def transform(self, results: dict) -> dict:
        """Augment ``points`` / ``gt_bboxes_3d`` and record ``pcd_rotation``, ``pcd_rotation_angle``,
        ``pcd_trans``, ``pcd_scale_factor``, ``transformation_3d_flow``, ``lidar_aug_matrix``."""
        angle = float(np.random.uniform(*self.rot_range))
        if 'pcd_scale_factor' not in results:
            results['pcd_scale_factor'] = float(np.random.uniform(*self.scale_ratio_range))
        scale = float(results['pcd_scale_factor'])
        trans = np.random.normal(scale=self.translation_std, size=3).astype(np.float32)

        # rotation matrix in mmdet3d's row-vector form: p_new = p @ rot_mat_T
        _, rot_mat_T = rotation_3d_in_axis(
            torch.zeros(1, 1, 3), torch.tensor([angle]), axis=2, return_mat=True)
        rot_mat_T = rot_mat_T[0]
        points = results.get('points', None)
        boxes = results.get('gt_bboxes_3d', None)
        if points is not None:
            points.rotate(rot_mat_T)
            points.translate(trans)
            points.scale(scale)
            if self.shift_height:
                if 'height' not in (points.attribute_dims or {}):
                    raise KeyError('shift_height=True but points have no "height" attribute')
                points.tensor[:, points.attribute_dims['height']] *= scale
        if boxes is not None and len(boxes.tensor) > 0:
            boxes.rotate(angle)
            boxes.translate(trans)
            boxes.scale(scale)

        results['pcd_rotation'] = rot_mat_T
        results['pcd_rotation_angle'] = angle
        results['pcd_trans'] = trans
        results.setdefault('transformation_3d_flow', []).extend(['R', 'T', 'S'])
        mat = np.eye(4)
        mat[:3, :3] = scale * rot_mat_T.numpy().astype(np.float64).T
        mat[:3, 3] = scale * trans.astype(np.float64)
        compose_lidar_aug(results, mat)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(rot_range={self.rot_range}, '
                f'scale_ratio_range={self.scale_ratio_range}, '
                f'translation_std={self.translation_std.tolist()}, shift_height={self.shift_height})')

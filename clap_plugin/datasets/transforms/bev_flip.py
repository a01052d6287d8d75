"""Random BEV flips of the LiDAR scene, recorded in ``lidar_aug_matrix`` (BEVFusion's RandomFlip3D)."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS

from .global_aug import compose_lidar_aug


@TRANSFORMS.register_module()
class CLAPBEVFlip3D(BaseTransform):
    """Flip ``y -> -y`` ("horizontal") and / or ``x -> -x`` ("vertical") of points, boxes and BEV masks.

    Args:
        flip_ratio_bev_horizontal: probability of the horizontal flip.
        flip_ratio_bev_vertical: probability of the vertical flip.
    """

    def __init__(self, flip_ratio_bev_horizontal: float = 0.5,
                 flip_ratio_bev_vertical: float = 0.5) -> None:
        for name, p in (('flip_ratio_bev_horizontal', flip_ratio_bev_horizontal),
                        ('flip_ratio_bev_vertical', flip_ratio_bev_vertical)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {p}')
        self.flip_ratio_bev_horizontal = flip_ratio_bev_horizontal
        self.flip_ratio_bev_vertical = flip_ratio_bev_vertical

    def _flip(self, results: dict, direction: str) -> np.ndarray:
        if 'points' in results:
            results['points'].flip(direction)
        if 'gt_bboxes_3d' in results:
            results['gt_bboxes_3d'].flip(direction)
        if 'gt_masks_bev' in results:  # (C, X, Y): horizontal flips y (axis 2), vertical x (axis 1)
            axis = 2 if direction == 'horizontal' else 1
            results['gt_masks_bev'] = np.flip(results['gt_masks_bev'], axis=axis).copy()
        return np.diag([1.0, -1.0, 1.0, 1.0]) if direction == 'horizontal' else np.diag(
            [-1.0, 1.0, 1.0, 1.0])

    def transform(self, results: dict) -> dict:
        """Flip and set ``pcd_horizontal_flip``, ``pcd_vertical_flip``, ``lidar_aug_matrix``."""
        horizontal = bool(np.random.rand() < self.flip_ratio_bev_horizontal)
        vertical = bool(np.random.rand() < self.flip_ratio_bev_vertical)
        mat = np.eye(4)
        flow = results.setdefault('transformation_3d_flow', [])
        if horizontal:
            mat = self._flip(results, 'horizontal') @ mat
            flow.append('HF')
        if vertical:
            mat = self._flip(results, 'vertical') @ mat
            flow.append('VF')
        results['pcd_horizontal_flip'] = horizontal
        results['pcd_vertical_flip'] = vertical
        compose_lidar_aug(results, mat)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(flip_ratio_bev_horizontal={self.flip_ratio_bev_horizontal}, '
                f'flip_ratio_bev_vertical={self.flip_ratio_bev_vertical})')

"""SimIPU modules, registered into mmdet3d's MODELS registry on import."""
from .matching import farthest_point_sampling, match_keypoints, random_view_transform, transform_points
from .simipu_pretrainer import ProjectionMLP, SimIPUPretrainer

__all__ = ['farthest_point_sampling',
           'match_keypoints', 'random_view_transform', 'transform_points', 'ProjectionMLP', 'SimIPUPretrainer']

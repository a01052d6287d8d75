"""Ray selection: SDF mean curvature and the curvature ray selector of LiDAR points and camera pixels."""
from .curvature_ray_selector import CurvatureRaySelector, CurvatureSampler
from .sdf_curvature import mean_curvature
from .selection import PIXEL_POLICIES, RaySelection

__all__ = ['CurvatureRaySelector', 'CurvatureSampler', 'PIXEL_POLICIES', 'RaySelection', 'mean_curvature']

"""Ray selection: SDF mean curvature and the curvature ray selector of LiDAR points and camera pixels."""
from .curvature_ray_selector import CurvatureRaySelector
from .sdf_curvature import mean_curvature
from .selection import PIXEL_POLICIES, WEIGHTINGS, RaySelection

__all__ = ['CurvatureRaySelector', 'PIXEL_POLICIES', 'RaySelection', 'WEIGHTINGS', 'mean_curvature']

"""Ray selection: SDF mean curvature and the curvature ray selector of LiDAR points and camera pixels."""
from .curvature_sampler import CurvatureRaySelector, CurvatureSampler
from .ray_selection import PIXEL_POLICIES, RaySelection
from .sdf_curvature import mean_curvature

__all__ = ['CurvatureRaySelector', 'CurvatureSampler', 'PIXEL_POLICIES', 'RaySelection', 'mean_curvature']

"""Sampling: SDF mean curvature and the curvature sampler of LiDAR rays and camera pixels."""
from .curvature_sampler import CurvatureSampler
from .sdf_curvature import mean_curvature

__all__ = ['CurvatureSampler', 'mean_curvature']

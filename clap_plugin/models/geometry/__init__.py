"""Geometry shared by CLAP and the baselines: point -> pixel projection and keyframe selection."""
from .keyframe import keyframe_points
from .projection import depth_homogeneous_aug, flat_pixel_index, pixel_projection, project_points

__all__ = ['keyframe_points', 'depth_homogeneous_aug', 'flat_pixel_index', 'pixel_projection', 'project_points']

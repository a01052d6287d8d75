"""Synthetic nuScenes: procedural street scenes, ray-cast LiDAR and cameras, written as a nuScenes tree."""
from .generator import GeneratorConfig, SyntheticDataError, SyntheticNuScenesGenerator, generate, scene_names

__all__ = ['GeneratorConfig', 'SyntheticDataError', 'SyntheticNuScenesGenerator', 'generate', 'scene_names']

"""Evaluation metrics."""
from .nuscenes_metric import CLAPNuScenesMetric

__all__ = ['CLAPNuScenesMetric']

"""Evaluation: the nuScenes metric, and the probe of a pre-training (:mod:`.pretrain_probe`, its run
:mod:`.pretrain_probe_run`)."""
from .nuscenes_metric import CLAPNuScenesMetric

__all__ = ['CLAPNuScenesMetric']

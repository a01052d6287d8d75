"""Hooks: prototype EM schedule, pre-training pictures, cross-rank weight check, checkpoint load report,
GT-sampling switch-off."""
from .checkpoint_report_hook import CheckpointLoadReportHook
from .clap_visualization_hook import CLAPVisualizationHook
from .disable_object_sample_hook import CLAPDisableObjectSampleHook
from .prototype_em_hook import PrototypeEMHook
from .rank_consistency_hook import RankConsistencyHook

__all__ = [
    'CheckpointLoadReportHook', 'CLAPDisableObjectSampleHook', 'CLAPVisualizationHook', 'PrototypeEMHook',
    'RankConsistencyHook'
]

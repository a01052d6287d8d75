"""Hooks: prototype EM schedule, pre-training pictures, cross-rank weight check, checkpoint load report,
GT-sampling switch-off, early stop on a saturated validation curve, and the long-run safety net (atomic
checkpoints, exact resume, non-finite losses)."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checkpoint_report_hook import CheckpointLoadReportHook
from .clap_visualization_hook import CLAPVisualizationHook
from .disable_object_sample_hook import CLAPDisableObjectSampleHook
from .exact_resume_hook import ExactResumeHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .prototype_em_hook import PrototypeEMHook
from .rank_consistency_hook import RankConsistencyHook
from .saturation_stop_hook import SaturationStopHook

__all__ = [
    'AtomicCheckpointHook', 'CheckpointLoadReportHook', 'CLAPDisableObjectSampleHook', 'CLAPVisualizationHook',
    'ExactResumeHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'PrototypeEMHook', 'RankConsistencyHook',
    'SaturationStopHook'
]

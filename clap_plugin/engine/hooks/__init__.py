"""Hooks: prototype EM schedule, pre-training pictures, cross-rank weight check."""
from .clap_visualization_hook import CLAPVisualizationHook
from .prototype_em_hook import PrototypeEMHook
from .rank_consistency_hook import RankConsistencyHook

__all__ = ['CLAPVisualizationHook', 'PrototypeEMHook', 'RankConsistencyHook']

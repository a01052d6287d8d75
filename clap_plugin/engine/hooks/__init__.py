"""Hooks: prototype EM schedule, pre-training pictures."""
from .clap_visualization_hook import CLAPVisualizationHook
from .prototype_em_hook import PrototypeEMHook

__all__ = ['CLAPVisualizationHook', 'PrototypeEMHook']

"""Labelled matplotlib figures of pre-training (Agg backend, no display needed)."""
from .figure_io import figure_to_rgb, save_figure
from .metric_history_figure import METRIC_PANELS, metric_history_figure
from .pretrain_figure import PANEL_TITLES, pretrain_figure

__all__ = ['METRIC_PANELS', 'PANEL_TITLES', 'figure_to_rgb', 'metric_history_figure', 'pretrain_figure',
           'save_figure']

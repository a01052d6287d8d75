"""Collapse and agreement metrics of the prototypes over the iterations, one labelled figure."""
from typing import Dict, List, Sequence, Tuple

from matplotlib.figure import Figure

# panel title -> (metric names as logged without the 'train/' prefix, y label)
METRIC_PANELS: Dict[str, Tuple[Sequence[str], str]] = {
    'hard-assignment perplexity (collapse: -> 1)': (
        ('proto_hard_ppl_lidar', 'proto_hard_ppl_camera', 'proto_interval_ppl'), 'perplexity'),
    'swapped-assignment agreement vs chance': (('proto_swap_agree', 'proto_swap_chance'), 'share of cells'),
    'prototype mean off-diagonal cosine (collapse: -> 1)': (('proto_cos_offdiag', 'proto_gram_offdiag'), 'cosine'),
    'dead / re-seeded prototypes': (('proto_dead', 'proto_reseeded'), 'prototypes'),
}

History = Dict[str, List[Tuple[int, float]]]  # metric -> [(iteration, value)]


def metric_history_figure(history: History, title: str = '') -> Figure:
    """2 x 2 panels of :data:`METRIC_PANELS` from ``history``; a metric never logged is left out."""
    fig = Figure(figsize=(12, 8), layout='constrained')
    if title:
        fig.suptitle(title)
    for i, (panel, (names, ylabel)) in enumerate(METRIC_PANELS.items()):
        ax = fig.add_subplot(2, 2, i + 1)
        ax.set_title(panel)
        drawn = 0
        for name in names:
            points = history.get(name) or []
            if not points:
                continue
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker='.' if len(xs) < 50 else None, label=name)
            drawn += 1
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, 'not logged', ha='center', va='center', transform=ax.transAxes)
        ax.set_xlabel('iteration')
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    return fig

"""Write a matplotlib figure as a PNG (atomically) or turn it into an RGB array (for TensorBoard)."""
import os
import os.path as osp
import tempfile

import numpy as np
from matplotlib.figure import Figure


def save_figure(fig: Figure, path: str, dpi: int = 100) -> None:
    """PNG of ``fig`` at ``path``: a temporary name beside it, then a rename (no half-written picture)."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path) + '.', suffix='.tmp')
    os.close(fd)
    try:
        fig.savefig(tmp, format='png', dpi=dpi)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def figure_to_rgb(fig: Figure) -> np.ndarray:
    """(H, W, 3) uint8 RGB rendering of ``fig`` (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()

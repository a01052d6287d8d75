"""Pictures of CLAP pre-training: one labelled figure per visualisation step, and the prototype metrics over time.

The model produces the content (:meth:`CLAPPretrainer.pop_visuals`, a typed :class:`PretrainVisuals`); this
hook only schedules it and writes the figures (``clap_plugin.visualization``, matplotlib Agg).
"""
import os.path as osp
from typing import Dict, List, Tuple

from mmdet3d.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from clap_plugin.visualization import METRIC_PANELS, figure_to_rgb, metric_history_figure, pretrain_figure, save_figure


@HOOKS.register_module()
class CLAPVisualizationHook(Hook):
    """Every ``interval`` iterations, write ``work_dir/<out_dir>/iter_<N>_pretrain.png`` (rendered vs real RGB
    and range of camera ``camera`` with colour bars, the pixel selection map with the selected camera rays, a
    BEV of the LiDAR points with the selected rays and a BEV of the hard prototype assignments) and refresh
    ``metrics.png`` (the collapse and agreement metrics seen so far, from the message hub). Both also go to
    the runner's visualiser (e.g. TensorBoard) as ``clap/pretrain`` and ``clap/metrics``.

    Args:
        interval: iterations between figures.
        camera: camera index.
        stride: pixel stride of the rendered preview (rendering every pixel is costly).
        out_dir: sub-folder of the work dir.
    """
    priority = 'LOW'

    def __init__(self, interval: int = 500, camera: int = 0, stride: int = 8, out_dir: str = 'vis') -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval, self.camera, self.stride, self.out_dir = int(interval), int(camera), int(stride), out_dir
        self.history: Dict[str, List[Tuple[int, float]]] = {}
        self._seen: Dict[str, int] = {}  # metric -> length of its message-hub buffer when last read

    @staticmethod
    def _model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'pop_visuals'):
            raise TypeError(f'CLAPVisualizationHook needs a CLAPPretrainer model, got {type(model).__name__}')
        return model

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if (runner.iter + 1) % self.interval == 0:
            self._model(runner).request_visuals(self.camera, self.stride)

    def _record_metrics(self, runner) -> None:
        """Append the metrics that the message hub got since the last call (the EM hook's once per interval)."""
        scalars = runner.message_hub.log_scalars
        for names, _ in METRIC_PANELS.values():
            for name in names:
                buf = scalars.get(f'train/{name}')
                if buf is None:
                    continue
                n = len(buf.data[0])
                if n != self._seen.get(name, 0):
                    self._seen[name] = n
                    self.history.setdefault(name, []).append((runner.iter + 1, float(buf.current())))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._record_metrics(runner)
        if (runner.iter + 1) % self.interval != 0:
            return
        visuals = self._model(runner).pop_visuals()
        if visuals is None or not is_main_process():
            return
        step = runner.iter + 1
        folder = osp.join(runner.work_dir, self.out_dir)
        figures = dict(pretrain=(pretrain_figure(visuals, f'CLAP pre-training, iteration {step}'),
                                 osp.join(folder, f'iter_{step:06d}_pretrain.png')),
                       metrics=(metric_history_figure(self.history, f'prototype metrics up to iteration {step}'),
                                osp.join(folder, 'metrics.png')))
        for name, (fig, path) in figures.items():
            save_figure(fig, path)
            runner.visualizer.add_image(f'clap/{name}', figure_to_rgb(fig), step=step)

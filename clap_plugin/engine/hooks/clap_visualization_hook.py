"""Pictures of CLAP pre-training: rendered vs real depth and RGB, curvature weights, sampled rays, prototypes."""
import os
import os.path as osp
from typing import Dict, Optional

import cv2
import numpy as np
import torch.nn.functional as F
from mmdet3d.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255).round().astype(np.uint8)


def _colorize(values: np.ndarray, vmax: Optional[float] = None) -> np.ndarray:
    """(H, W) scalars -> (H, W, 3) RGB uint8 (NaN: black)."""
    finite = np.isfinite(values)
    vmax = float(np.nanmax(values[finite])) if vmax is None and finite.any() else (vmax or 1.0)
    norm = np.where(finite, values / max(vmax, 1e-9), 0.0)
    col = cv2.applyColorMap(_to_uint8(norm), cv2.COLORMAP_TURBO)[..., ::-1].copy()
    col[~finite] = 0
    return col


@HOOKS.register_module()
class CLAPVisualizationHook(Hook):
    """Every ``interval`` iterations, write PNGs (and visualiser images, e.g. TensorBoard) to
    ``work_dir/vis``: rendered vs real RGB and range of camera ``camera``, the curvature pixel-weight map with
    the sampled pixels, a BEV of the LiDAR points with the sampled rays, and a BEV of prototype assignments.

    Args:
        interval: iterations between pictures.
        camera: camera index.
        stride: pixel stride of the rendered preview (rendering every pixel is costly).
        out_dir: sub-folder of the work dir.
    """
    priority = 'LOW'

    def __init__(self, interval: int = 500, camera: int = 0, stride: int = 8, out_dir: str = 'vis') -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval, self.camera, self.stride, self.out_dir = int(interval), int(camera), int(stride), out_dir

    @staticmethod
    def _model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'keep_visuals'):
            raise TypeError(f'CLAPVisualizationHook needs a CLAPPretrainer model, got {type(model).__name__}')
        return model

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._model(runner).keep_visuals = (runner.iter + 1) % self.interval == 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = self._model(runner)
        if not model.keep_visuals:
            return
        model.keep_visuals = False
        if not is_main_process():
            return
        pictures = self.pictures(model)
        folder = osp.join(runner.work_dir, self.out_dir)
        os.makedirs(folder, exist_ok=True)
        step = runner.iter + 1
        for name, img in pictures.items():
            path = osp.join(folder, f'iter_{step:06d}_{name}.png')
            tmp = path + '.tmp.png'
            if not cv2.imwrite(tmp, cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
                raise OSError(f'could not write {tmp}')
            os.replace(tmp, path)
            runner.visualizer.add_image(f'clap/{name}', img, step=step)
        model.last_visuals.clear()

    def pictures(self, model) -> Dict[str, np.ndarray]:
        """The RGB uint8 pictures of the last stashed iteration."""
        vis = model.last_visuals
        out: Dict[str, np.ndarray] = {}
        if 'proj' in vis:
            was_training = model.training
            model.eval()
            try:
                prev = model.render_camera_preview(self.camera, self.stride)
            finally:
                model.train(was_training)
            rgb = np.concatenate([prev['rgb_real'].cpu().numpy(), prev['rgb'].cpu().numpy()], axis=1)
            out['rgb_real_vs_rendered'] = _to_uint8(rgb)
            rr, rd = prev['range_real'].cpu().numpy(), prev['range'].cpu().numpy()
            vmax = float(np.nanmax(np.concatenate([rr[np.isfinite(rr)], rd.ravel()]))) if rd.size else 1.0
            out['range_real_vs_rendered'] = np.concatenate([_colorize(rr, vmax), _colorize(rd, vmax)], axis=1)
            wmap = vis['pixel_maps'][self.camera].cpu().numpy()
            heat = _colorize(wmap / max(float(wmap.max()), 1e-12))
            for u, v in vis['pixels'][self.camera].cpu().numpy():
                cv2.circle(heat, (int(u), int(v)), 1, (255, 255, 255), -1)
            out['curvature_weights_and_rays'] = heat
        out['bev_sampled_rays'] = self._bev_points(vis)
        if 'proto_cells' in vis:
            out['bev_prototypes'] = self._bev_prototypes(model, vis)
        return out

    @staticmethod
    def _bev_points(vis, size: int = 400, extent: float = 54.0) -> np.ndarray:
        img = np.zeros((size, size, 3), np.uint8)
        pts = vis['points'][:, :2].cpu().numpy()
        w = vis['point_weights'].cpu().numpy()
        px = ((pts + extent) / (2 * extent) * (size - 1)).round().astype(int)
        ok = (px >= 0).all(1) & (px < size).all(1)
        shade = _colorize((w / max(float(w.max()), 1e-12))[None])[0]
        img[size - 1 - px[ok, 1], px[ok, 0]] = (shade[ok] * 0.6).astype(np.uint8)
        sel = vis['point_inds'].cpu().numpy()
        sp = px[sel]
        ok = (sp >= 0).all(1) & (sp < size).all(1)
        img[size - 1 - sp[ok, 1], sp[ok, 0]] = (255, 255, 255)
        return img

    @staticmethod
    def _bev_prototypes(model, vis) -> np.ndarray:
        ix, iy = vis['proto_cells'].cpu()
        nx, ny = [int(v) for v in vis['proto_grid']]
        emb = model.prototype_loss.last_embeddings['lidar'][:ix.numel()]
        protos = F.normalize(model.prototype_loss.prototypes.detach(), dim=-1)
        assign = (emb @ protos.t()).argmax(-1).cpu().numpy()
        rng = np.random.default_rng(0)
        palette = rng.integers(40, 256, size=(protos.shape[0], 3)).astype(np.uint8)
        img = np.zeros((ny, nx, 3), np.uint8)
        img[ny - 1 - iy.numpy(), ix.numpy()] = palette[assign]
        scale = max(1, 400 // max(nx, ny))
        return np.kron(img, np.ones((scale, scale, 1), np.uint8))

"""Pretext figures of a rendering pre-training: how close rendered depth and colour come to the sensors.

On val samples (no augmentation, no masking: the encoders see the whole input), the field of the pre-trained
model (and of the same model at its random initialisation) renders

* LiDAR rays through up to ``max_rays`` keyframe points: AbsRel = mean(|r_hat - r| / r) and RMSE (m) of the
  rendered range r_hat against the LiDAR range r (models that render LiDAR rays);
* camera rays through pixels where a LiDAR point projects: the same range errors, and the mean absolute RGB
  error in [0, 1] (models that render camera rays).
"""
import copy
from typing import Dict, List, Optional

import torch
from mmdet3d.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint

from clap_plugin.models.rendering.ray_generation import camera_rays, lidar_rays, sensor_view


def range_errors(pred: torch.Tensor, target: torch.Tensor) -> Dict[str, float]:
    """AbsRel and RMSE of (R,) rendered ranges against (R,) positive targets."""
    if target.numel() == 0:
        raise ValueError('no ray with a range target')
    err = pred - target
    return dict(abs_rel=float((err.abs() / target).mean()), rmse=float(err.pow(2).mean().sqrt()))


@torch.no_grad()
def sample_figures(model, data: dict, max_rays: int = 2048, seed: int = 0) -> Dict[str, float]:
    """Rendering errors of one collated, preprocessed sample (see the module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = data['inputs'], data['data_samples']
    metas = [s.metainfo for s in samples]
    points = [p.float() for p in inputs['points']]
    imgs = inputs.get('imgs') if model.with_camera else None
    bev = model.extract_bev(dict(points=points, imgs=imgs), metas)
    volume = model.volume_lifter(bev['fused_bev'])[0]
    kf = model.keyframe_points(points[0])
    out: Dict[str, float] = {}
    if model.render_lidar:
        pick = torch.randperm(kf.shape[0], generator=gen)[:max_rays]
        rays = lidar_rays(kf[pick], torch.zeros(3, dtype=kf.dtype))
        rays = rays[rays.range_mask]
        rendered = model.rendering_head.render(volume, rays)
        out.update({f'lidar_{k}': v for k, v in range_errors(rendered['range'], rays.range).items()})
    if model.render_camera and imgs is not None:
        cams = model.camera_matrices(metas, imgs.shape[1], imgs)
        raw = inputs['raw_imgs'][0].float()  # (N_cam, 3, H, W) in [0, 1], see CLAPPretrainDataPreprocessor
        view = sensor_view(kf, cams['lidar_aug_matrix'][0].float(), cams['lidar2img'][0].float(),
                           cams['img_aug_matrix'][0].float(), raw, with_depth=True)
        cam, row, col = torch.nonzero(torch.isfinite(view.depth), as_tuple=True)
        pick = torch.randperm(cam.numel(), generator=gen)[:max_rays]
        cam, row, col = cam[pick], row[pick], col[pick]
        rgb_true, rng_true, rgb_pred, rng_pred = [], [], [], []
        for c in cam.unique():
            sel = cam == c
            pixels = torch.stack([col[sel].float() + 0.5, row[sel].float() + 0.5], -1)[None]  # (1, R, 2)
            rays = camera_rays(view.proj[c:c + 1], pixels, raw[c:c + 1], view.depth[c:c + 1])
            rendered = model.rendering_head.render(volume, rays)
            rgb_pred.append(rendered['rgb'])
            rng_pred.append(rendered['range'])
            rgb_true.append(rays.rgb)
            rng_true.append(rays.range)
        out.update({f'camera_{k}': v for k, v in range_errors(torch.cat(rng_pred), torch.cat(rng_true)).items()})
        out['rgb_l1'] = float((torch.cat(rgb_pred) - torch.cat(rgb_true)).abs().mean())
    return out


def pretext_dataset_cfg(cfg: Config, data_root: str, version: str) -> dict:
    """The pre-training dataset on the val split, without augmentation (see pretrain_probe.probe_pipeline)."""
    from clap_plugin.evaluation.pretrain_probe import probe_pipeline
    ds = copy.deepcopy(cfg.train_dataloader.dataset)
    while ds.get('type') in ('LabelFractionDataset', 'CBGSDataset', 'RepeatDataset'):
        ds = ds.dataset
    ds.update(data_root=data_root, ann_file='nuscenes_infos_val.pkl', pipeline=probe_pipeline(ds.pipeline),
              test_mode=True)  # no labels are read
    ds.metainfo = dict(ds.get('metainfo') or {}, version=version)
    return ds


def pretext_figures(config: str, checkpoint: Optional[str], data_root: str, version: str, num_samples: int,
                    seed: int = 0) -> Dict[str, float]:
    """Mean rendering errors over the first ``num_samples`` val samples; ``checkpoint=None``: the random init."""
    cfg = Config.fromfile(config)
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='current')
    model.eval()
    dataset = DATASETS.build(pretext_dataset_cfg(cfg, data_root, version))
    per_sample: List[Dict[str, float]] = []
    for i in range(min(num_samples, len(dataset))):
        data = model.data_preprocessor(pseudo_collate([dataset[i]]), False)
        per_sample.append(sample_figures(model, data, seed=seed + i))
    keys = per_sample[0].keys()
    return {k: sum(s[k] for s in per_sample) / len(per_sample) for k in keys} | dict(samples=len(per_sample))

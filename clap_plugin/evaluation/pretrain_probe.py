"""Probes of a CLAP pre-training that a broken component cannot pass (arXiv 2412.03059's claims, measured).

On a checkpoint (or the same model at its random initialisation) and nuScenes-format samples with boxes:

* prototype branch, under the training conditions (masking on, past the curvature warm-up): the share of
  prototype cells whose LiDAR BEV is exactly zero, the prototypes' mean off-diagonal cosine, the
  hard-assignment perplexity of each modality and the swap agreement against its chance level;
* curvature sampling: the sampler's weight share on keyframe points inside annotated boxes divided by those
  points' share (1 = no preference for objects), for several curvature estimators on the same field;
* a frozen-feature linear probe: logistic regression of "this BEV cell's centre lies inside an annotated box"
  on the LiDAR, camera and fused BEV features of unmasked inputs, fitted on one split and scored (average
  precision) on another.

Boxes are read from the info file (mmdet3d v2 ``instances``: gravity centre, (dx, dy, dz), yaw), so the probe
pipeline must not augment the geometry (:func:`probe_pipeline`).
"""
import copy
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..datasets.transforms.points_loading import SWEEP_LOADERS

GEOMETRY_AUGMENTATIONS = ('CLAPGlobalRotScaleTrans', 'CLAPBEVFlip3D', 'GlobalRotScaleTrans', 'RandomFlip3D',
                          'PointShuffle')


def probe_pipeline(train_pipeline: Sequence[dict]) -> List[dict]:
    """The pre-training pipeline without geometric augmentation, with a deterministic image resize and the
    nearest LiDAR sweeps (``test_mode``; in training mode mmdet3d draws the sweeps at random when a sample has
    more than ``sweeps_num``), so that the figures of a checkpoint do not change from run to run."""
    out = []
    for t in copy.deepcopy(list(train_pipeline)):
        if t['type'] in GEOMETRY_AUGMENTATIONS:
            continue
        if t['type'] == 'CLAPImageAug3D':
            t.update(is_train=False, rand_flip=False, rot_lim=[0.0, 0.0])
        if t['type'] in SWEEP_LOADERS:
            t.update(test_mode=True)
        out.append(t)
    return out


def points_in_boxes(points: Tensor, boxes: Tensor) -> Tensor:
    """(P, 3) points, (K, 7) boxes [x, y, z (gravity centre), dx, dy, dz, yaw] -> (P, K) bool inside."""
    if boxes.numel() == 0:
        return torch.zeros(points.shape[0], 0, dtype=torch.bool, device=points.device)
    d = points[:, None, :3] - boxes[None, :, :3]  # (P, K, 3)
    c, s = torch.cos(boxes[:, 6]), torch.sin(boxes[:, 6])
    lx = d[..., 0] * c + d[..., 1] * s  # rotate by -yaw into the box frame
    ly = -d[..., 0] * s + d[..., 1] * c
    return (lx.abs() <= boxes[:, 3] / 2) & (ly.abs() <= boxes[:, 4] / 2) & (d[..., 2].abs() <= boxes[:, 5] / 2)


def bev_cells_in_boxes(grid: Tuple[int, int], point_cloud_range: Sequence[float], boxes: Tensor) -> Tensor:
    """(X, Y) bool: BEV cell centres of a (X, Y) grid over the range that lie inside a box footprint."""
    nx, ny = grid
    x0, y0, _, x1, y1, _ = [float(v) for v in point_cloud_range]
    xs = x0 + (torch.arange(nx, dtype=torch.float32) + 0.5) * (x1 - x0) / nx
    ys = y0 + (torch.arange(ny, dtype=torch.float32) + 0.5) * (y1 - y0) / ny
    gx, gy = torch.meshgrid(xs, ys, indexing='ij')
    if boxes.numel() == 0:
        return torch.zeros(nx, ny, dtype=torch.bool)
    flat = torch.stack([gx.reshape(-1), gy.reshape(-1), torch.zeros(nx * ny)], dim=-1)
    b = boxes.float().clone()
    b[:, 2] = 0.0
    b[:, 5] = 1e6  # footprint only
    return points_in_boxes(flat, b).any(dim=1).view(nx, ny)


def average_precision(scores: Tensor, labels: Tensor) -> float:
    """Area under the precision-recall curve (step-wise, as scikit-learn's ``average_precision_score``)."""
    labels = labels.bool()
    n_pos = int(labels.sum())
    if n_pos == 0:
        raise ValueError('average precision needs at least one positive label')
    order = torch.argsort(scores, descending=True, stable=True)
    hits = labels[order].float()
    tp = torch.cumsum(hits, 0)
    precision = tp / torch.arange(1, hits.numel() + 1, dtype=torch.float32)
    return float((precision * hits).sum() / n_pos)


def linear_probe_ap(train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor, steps: int = 300,
                    weight_decay: float = 1e-4, seed: int = 0) -> float:
    """Fit a class-balanced logistic regression on standardised features; AP on the validation cells."""
    g = torch.Generator().manual_seed(seed)
    mean, std = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    xt, xv = (train_x - mean) / std, (val_x - mean) / std
    w = (torch.randn(xt.shape[1], generator=g) * 0.01).requires_grad_(True)
    b = torch.zeros((), requires_grad=True)
    pos = train_y.float().mean().clamp(1e-6, 1 - 1e-6)
    pos_weight = (1 - pos) / pos
    opt = torch.optim.LBFGS([w, b], lr=0.5, max_iter=steps, line_search_fn='strong_wolfe')
    yt = train_y.float()

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(xt @ w + b, yt, pos_weight=pos_weight) + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return average_precision(xv @ w + b, val_y)


@dataclass
class PrototypeProbe:
    """Accumulated prototype-branch figures over probe samples."""
    zero_cells: int = 0
    cells: int = 0
    assign_lidar: List[Tensor] = field(default_factory=list)
    assign_camera: List[Tensor] = field(default_factory=list)
    code_lidar: List[Tensor] = field(default_factory=list)
    code_camera: List[Tensor] = field(default_factory=list)

    def summary(self, prototypes: Tensor) -> Dict[str, float]:
        from clap_plugin.models.prototypes.gram_regularizer import gram_off_diagonal_mean
        from clap_plugin.models.prototypes.swapped_prototype_loss import hard_perplexity, swap_agreement
        n_k = prototypes.shape[0]
        a_l, a_c = torch.cat(self.assign_lidar), torch.cat(self.assign_camera)
        agree, chance = swap_agreement(a_l, a_c, torch.cat(self.code_lidar), torch.cat(self.code_camera), n_k)
        return dict(zero_lidar_share=self.zero_cells / max(self.cells, 1), cells=self.cells,
                    proto_cos_offdiag=float(gram_off_diagonal_mean(prototypes)),
                    hard_ppl_lidar=float(hard_perplexity(a_l, n_k)), hard_ppl_camera=float(hard_perplexity(a_c, n_k)),
                    swap_agree=float(agree), swap_chance=float(chance),
                    num_prototypes=n_k)


@torch.no_grad()
def prototype_and_curvature_figures(model, data: dict, boxes: Sequence[Tensor], probe: PrototypeProbe,
                                    estimators: Dict[str, dict], enrichment: Dict[str, List[Tuple[float, float]]],
                                    rng_seed: int = 0) -> None:
    """One batch under training conditions (masking): prototype figures and curvature enrichment on boxes.

    ``estimators`` maps a name to CurvatureRaySelector overrides (``estimator``, ``fd_step``, ...); for each the
    (weight share in boxes, point share in boxes) pair of every sample is appended to ``enrichment[name]``.
    """
    from clap_plugin.models.pretrain.masking import mask_image_patches, mask_lidar_blocks
    from clap_plugin.models.prototypes.sinkhorn import sinkhorn_knopp
    inputs, samples = data['inputs'], data['data_samples']
    metas = [s.metainfo for s in samples]
    points = list(inputs['points'])
    torch.manual_seed(rng_seed)
    masked = [mask_lidar_blocks(p, model.point_cloud_range, model.mask_block_size, model.lidar_mask_ratio)[0]
              for p in points]
    imgs = inputs['imgs']
    bev = model.extract_bev(dict(points=masked,
                                 imgs=mask_image_patches(imgs, model.image_patch_size, model.camera_mask_ratio)[0]),
                            metas)
    volume = model.volume_lifter(bev['fused_bev'])
    if model.prototype_loss is not None:
        pl = model.prototype_loss
        lidar_bev = bev['lidar_bev']
        nonzero = lidar_bev.abs().sum(1) > 0
        cells, _ = model.prototype_cells(lidar_bev, masked, points)
        for b, (ix, iy) in enumerate(cells):
            # the naive check: the cells handed to the losses, looked up again in the LiDAR BEV
            probe.zero_cells += int((~nonzero[b, ix, iy]).sum())
            probe.cells += ix.numel()
            if ix.numel() < 2:
                continue
            emb = pl.embed(lidar_bev[b, :, ix, iy].t(), bev['camera_bev'][b, :, ix, iy].t())
            protos = F.normalize(pl.prototypes, dim=-1)
            s_p, s_i = emb['lidar'] @ protos.t(), emb['camera'] @ protos.t()
            q_p = sinkhorn_knopp(s_p, pl.sinkhorn_epsilon, pl.sinkhorn_iterations)
            q_i = sinkhorn_knopp(s_i, pl.sinkhorn_epsilon, pl.sinkhorn_iterations)
            probe.assign_lidar.append(s_p.argmax(-1))
            probe.assign_camera.append(s_i.argmax(-1))
            probe.code_lidar.append(q_p.argmax(-1))
            probe.code_camera.append(q_i.argmax(-1))
    sampler = model.ray_selector
    for b, pts in enumerate(points):
        kf = model.keyframe_points(pts.float())
        inside = points_in_boxes(kf, boxes[b].to(kf)).any(dim=1)
        if inside.sum() == 0:
            continue
        sdf_fn = model.rendering_head.sdf_function(volume[b])
        for name, overrides in estimators.items():
            s = copy.copy(sampler)
            for k, v in overrides.items():
                setattr(s, k, v)
            torch.manual_seed(rng_seed + b)
            w = s.point_weights(kf, sdf_fn, epoch=10**6)
            enrichment.setdefault(name, []).append((float(w[inside].sum()), float(inside.float().mean())))


@torch.no_grad()
def bev_features(model, data: dict) -> Dict[str, Tensor]:
    """Unmasked LiDAR, camera and fused BEV of a batch: name -> (B, C, X, Y)."""
    metas = [s.metainfo for s in data['data_samples']]
    bev = model.extract_bev(dict(points=list(data['inputs']['points']), imgs=data['inputs'].get('imgs')), metas)
    return {k.replace('_bev', ''): v for k, v in bev.items()}


def enrichment_ratio(pairs: List[Tuple[float, float]]) -> float:
    """Sum of the weight shares in boxes over the sum of the point shares in boxes (1 = no preference)."""
    w = sum(p[0] for p in pairs)
    s = sum(p[1] for p in pairs)
    return w / s if s > 0 else float('nan')


def subsample_cells(feats: Tensor, labels: Tensor, neg_fraction: float, gen: torch.Generator) -> Tuple[Tensor, Tensor]:
    """All positive cells and a random ``neg_fraction`` of the negative ones: (N, C), (N,)."""
    neg = torch.nonzero(~labels)[:, 0]
    keep_neg = neg[torch.rand(neg.numel(), generator=gen) < neg_fraction]
    idx = torch.cat([torch.nonzero(labels)[:, 0], keep_neg])
    return feats[idx], labels[idx]


def boxes_of_info(info: dict) -> Tensor:
    """(K, 7) gravity-centre boxes of an mmdet3d v2 info entry (``instances[*]['bbox_3d']``)."""
    rows = [inst['bbox_3d'][:7] for inst in info.get('instances', []) if len(inst.get('bbox_3d', [])) >= 7]
    return torch.tensor(np.asarray(rows, dtype=np.float32)).reshape(-1, 7)

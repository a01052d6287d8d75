"""Probes of a CLAP pre-training that a broken component cannot pass (arXiv 2412.03059's claims, measured).

On a checkpoint (or the same model at its random initialisation) and nuScenes-format samples with boxes:

* prototype branch, read from the model's own training step (``model.loss``: its masking, cell selection and
  prototype loss, past the curvature warm-up; :func:`record_training_step`): the share of prototype cells whose
  LiDAR BEV is exactly zero, the prototypes' mean off-diagonal cosine, the hard-assignment perplexity of each
  modality and the swap agreement against its chance level;
* curvature sampling: the ray selector's weight share on keyframe points inside annotated boxes divided by those
  points' share (1 = no preference for objects), for several curvature estimators on the field of that step;
* a frozen-feature linear probe: logistic regression of "this BEV cell's centre lies inside an annotated box"
  on the LiDAR, camera and fused BEV features of unmasked inputs, fitted on one split and scored (average
  precision) on another.

Boxes are read from the info file (mmdet3d v2 ``instances``: gravity centre, (dx, dy, dz), yaw), so the probe
pipeline must not augment the geometry (:func:`probe_pipeline`).
"""
import copy
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

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
class TrainingStep:
    """What one training step of the model computed, recorded by :func:`record_training_step`: the volume
    lifted from the masked inputs' fused BEV, and the (M, C_L), (M, C_I) cell features handed to the
    prototype loss (None without one)."""
    volume: Optional[Tensor] = None
    lidar_cells: Optional[Tensor] = None
    camera_cells: Optional[Tensor] = None


@contextmanager
def record_training_step(model) -> Iterator[TrainingStep]:
    """Forward hooks on ``model.volume_lifter`` and ``model.prototype_loss`` that record what a call of
    ``model.loss`` feeds them, so that a probe reads the training step itself instead of redoing it."""
    step = TrainingStep()

    def volume_hook(module, inputs, output):
        step.volume = output.detach()

    def prototype_hook(module, inputs, output):
        step.lidar_cells, step.camera_cells = inputs[0].detach(), inputs[1].detach()

    handles = [model.volume_lifter.register_forward_hook(volume_hook)]
    if model.prototype_loss is not None:
        handles.append(model.prototype_loss.register_forward_hook(prototype_hook))
    try:
        yield step
    finally:
        for h in handles:
            h.remove()


@dataclass
class PrototypeProbe:
    """Prototype-branch figures accumulated over training steps of one sample each.

    The cells and their features are those the model's own step handed to its prototype loss; the assignments,
    the Sinkhorn codes and the swap agreement are the loss's own (:func:`prototype_terms`).
    """
    zero_cells: int = 0
    cells: int = 0
    assign_lidar: List[Tensor] = field(default_factory=list)
    assign_camera: List[Tensor] = field(default_factory=list)
    agree_cells: float = 0.0  # sum over steps of swap agreement x cells
    chance_cells: float = 0.0  # sum over steps of its chance level x cells
    paired_cells: int = 0

    def add(self, prototype_loss, lidar_cells: Tensor, camera_cells: Tensor) -> None:
        """One step's cells: the naive check (a cell handed to the losses with an all-zero LiDAR feature), then
        the loss's assignments and figures of these cells."""
        from clap_plugin.models.prototypes.swapped_prototype_loss import prototype_terms
        m = lidar_cells.shape[0]
        self.zero_cells += int((lidar_cells.abs().sum(1) == 0).sum())
        self.cells += m
        if m < 2:
            return
        pl = prototype_loss
        emb = pl.embed(lidar_cells, camera_cells)
        terms = prototype_terms(emb['lidar'], emb['camera'], pl.prototype_matrix(), pl.temperature,
                                pl.em_temperature, pl.sinkhorn_epsilon, pl.sinkhorn_iterations)
        self.assign_lidar.append(terms.assignments['lidar'])
        self.assign_camera.append(terms.assignments['camera'])
        self.agree_cells += float(terms.figures['proto_swap_agree']) * m
        self.chance_cells += float(terms.figures['proto_swap_chance']) * m
        self.paired_cells += m

    def summary(self, prototypes: Tensor) -> Dict[str, float]:
        """Zero-LiDAR share, prototype cosine, hard perplexities over all steps' assignments, and the swap
        agreement with its chance level (per step, weighted by the step's cells)."""
        from clap_plugin.models.prototypes.gram_regularizer import gram_off_diagonal_mean
        from clap_plugin.models.prototypes.swapped_prototype_loss import hard_perplexity
        n_k = prototypes.shape[0]
        a_l, a_c = torch.cat(self.assign_lidar), torch.cat(self.assign_camera)
        paired = max(self.paired_cells, 1)
        return dict(zero_lidar_share=self.zero_cells / max(self.cells, 1), cells=self.cells,
                    proto_cos_offdiag=float(gram_off_diagonal_mean(prototypes)),
                    hard_ppl_lidar=float(hard_perplexity(a_l, n_k)), hard_ppl_camera=float(hard_perplexity(a_c, n_k)),
                    swap_agree=self.agree_cells / paired, swap_chance=self.chance_cells / paired,
                    num_prototypes=n_k)


@torch.no_grad()
def prototype_and_curvature_figures(model, data: dict, boxes: Sequence[Tensor], probe: PrototypeProbe,
                                    estimators: Dict[str, dict], enrichment: Dict[str, List[Tuple[float, float]]],
                                    rng_seed: int = 0) -> None:
    """One training step of ``model`` (its own masking, cell selection and losses): prototype figures and the
    curvature enrichment on boxes of the field it rendered.

    ``estimators`` maps a name to ray-selector overrides (``estimator``, ``fd_step``, ...); for each the
    (weight share in boxes, point share in boxes) pair of every sample is appended to ``enrichment[name]``.
    """
    torch.manual_seed(rng_seed)
    with record_training_step(model) as step:
        model.loss(data['inputs'], data['data_samples'])
    if model.prototype_loss is not None and step.lidar_cells is not None:
        probe.add(model.prototype_loss, step.lidar_cells, step.camera_cells)
    selector = model.ray_selector
    for b, pts in enumerate(data['inputs']['points']):
        kf = model.keyframe_points(pts.float())
        inside = points_in_boxes(kf, boxes[b].to(kf)).any(dim=1)
        if inside.sum() == 0:
            continue
        sdf_fn = model.rendering_head.sdf_function(step.volume[b])
        for name, overrides in estimators.items():
            s = copy.copy(selector)
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

"""The frozen-encoder probe: every encoder of the CPU-tiny BEVFusion frozen, only ``bbox_head`` trained.

With the encoders frozen and no augmentation, the BEV feature map the head reads is a fixed function of the
sample, so it is computed once per sample (:func:`cached_features`) and every probe of the arm (each label
fraction and seed) trains a freshly initialised head on the cached maps. A head iteration then costs a small
fraction of a full one. The head is scored with the fine-tune config's ``NuScenesMetric`` on the val split.

The head reads the maps through :class:`ProbeInputNorm`, a per-channel standardisation without affine parameters
(the BatchNorm that MAE and other SSL linear probes put before their head). Without it the probe ranks arms by
the scale of their features: random-init encoders give per-channel stds near 1e-3, a pre-trained export near 1,
and one learning rate cannot suit both. With it the probe's training and predictions do not change when the
features are multiplied by a constant, so it measures what the features hold, not how large they are.
"""
import copy
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from mmdet3d.registry import DATASETS, METRICS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import load_state_dict
from torch import Tensor, nn

from clap_plugin.datasets.transforms.points_loading import SWEEP_LOADERS
from clap_plugin.utils.state_dicts import load_state_dict as read_state_dict

ANNOTATION_STEPS = ('ObjectRangeFilter', 'ObjectNameFilter')
# the probe's protocol, written into every probe record: 1 = raw features into bbox_head; 2 = the features
# standardised per channel by ProbeInputNorm first (the default)
PROBE_VERSION = 2


def init_weights_quietly(module: BaseModule) -> None:
    """``module.init_weights()`` without mmengine's INFO line per parameter: a runner sends that dump to its log
    file, but the probe has none, so it would fill the job's log (about 700 lines a model)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        module.init_weights()
    finally:
        logger.setLevel(level)


@dataclass
class CachedSample:
    """One sample's frozen BEV feature map (1, C, X, Y) and its data sample (metas, ground truth)."""
    feature: Tensor
    data_sample: object


def probe_train_pipeline(cfg: Config) -> List[dict]:
    """The test pipeline (deterministic resize, no augmentation) that also loads and filters the boxes, as the
    training pipeline does."""
    filters = [copy.deepcopy(t) for t in cfg.train_pipeline if t['type'] in ANNOTATION_STEPS]
    out = []
    for t in copy.deepcopy(list(cfg.test_pipeline)):
        if t['type'] == 'Pack3DDetInputs':
            out.extend(filters)
        out.append(t)
        if t['type'] in SWEEP_LOADERS:
            out.append(dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True, with_attr_label=False))
    return out


def probe_config(config: str, data_root: str, version: str, cfg_options: Optional[Dict[str, Any]] = None) -> Config:
    """The fine-tune config pointed at ``data_root`` (datasets and evaluator) and its nuScenes version, with
    ``cfg_options`` (``--cfg-options`` style keys, e.g. ``{'model.bbox_head.heatmap_prior_prob': 0.1}``) merged."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    inner = cfg.train_dataloader.dataset
    while inner.get('type') == 'LabelFractionDataset':
        inner = inner.dataset
    for ds in (inner, cfg.val_dataloader.dataset):
        ds.data_root = data_root
        ds.metainfo = dict(ds.get('metainfo') or {}, version=version)
    cfg.val_evaluator.data_root = data_root
    cfg.val_evaluator.ann_file = data_root.rstrip('/') + '/nuscenes_infos_val.pkl'
    cfg.probe_train_dataset = dict(copy.deepcopy(inner), pipeline=probe_train_pipeline(cfg))
    return cfg


def load_encoders(model: torch.nn.Module, path: str, modules: Optional[Sequence[str]] = None) -> int:
    """Load an encoder export into ``model`` as ``load_from`` does; every tensor must find its place.
    ``modules``: load only the tensors of these top-level modules (``img_backbone``, ``pts_middle_encoder``, ...),
    the others keep their random init; each must be in the export. Returns the number of tensors loaded."""
    state, _ = read_state_dict(path)
    if modules is not None:
        present = {k.split('.', 1)[0] for k in state}
        missing = [m for m in modules if m not in present]
        if missing:
            raise ValueError(f'{path}: no tensors of {missing} in the export (it has {sorted(present)})')
        state = {k: v for k, v in state.items() if k.split('.', 1)[0] in set(modules)}
    own = model.state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise ValueError(f'{path}: {len(bad)} tensors do not fit the probe model (first: {bad[:3]})')
    load_state_dict(model, state, strict=False, logger='current')
    return len(state)


@dataclass
class FeatureScale:
    """Scale of a set of BEV maps: per-channel standard deviation over samples and cells, averaged over the
    channels (``channel_std``), and the mean absolute value (``abs_mean``)."""
    channel_std: float
    abs_mean: float


@torch.no_grad()
def feature_scale(samples: Sequence[CachedSample]) -> FeatureScale:
    """:class:`FeatureScale` of the cached maps (each (1, C, X, Y))."""
    if not samples:
        raise ValueError('feature_scale needs at least one cached sample')
    x = torch.cat([s.feature.double() for s in samples])  # (N, C, X, Y)
    return FeatureScale(channel_std=float(x.transpose(0, 1).flatten(1).std(dim=1).mean()),
                        abs_mean=float(x.abs().mean()))


class ProbeInputNorm(BaseModule):
    """Per-channel standardisation of the probe's input: a BatchNorm without affine parameters whose output does
    not depend on the input's scale.

    Train mode normalises with the batch's mean and (biased) variance over (B, X, Y) and accumulates their
    cumulative averages (the mean, and the unbiased variance, as ``nn.BatchNorm2d(momentum=None)``); eval mode
    normalises with those averages. The epsilon under the square root is ``rel_eps`` times the channels' mean
    variance rather than a constant, so that multiplying the input by c > 0 leaves the output unchanged even for
    features whose variance is far below BatchNorm's constant 1e-5 (random-init encoders: about 1e-6).

    Args:
        num_channels: C of the (B, C, X, Y) input.
        rel_eps: epsilon relative to the mean variance over channels.
    """

    def __init__(self, num_channels: int, rel_eps: float = 1e-5, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_channels < 1:
            raise ValueError(f'ProbeInputNorm num_channels must be >= 1, got {num_channels}')
        if not rel_eps > 0:
            raise ValueError(f'ProbeInputNorm rel_eps must be > 0, got {rel_eps}')
        self.num_channels = num_channels
        self.rel_eps = float(rel_eps)
        self.register_buffer('running_mean', torch.zeros(num_channels))
        self.register_buffer('running_var', torch.ones(num_channels))
        self.register_buffer('num_batches_tracked', torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, X, Y) -> (B, C, X, Y) standardised per channel."""
        if x.dim() != 4 or x.shape[1] != self.num_channels:
            raise ValueError(f'ProbeInputNorm expects (B, {self.num_channels}, X, Y), got {tuple(x.shape)}')
        if self.training:
            dims = (0, 2, 3)
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            with torch.no_grad():
                n = x.numel() // x.shape[1]
                unbiased = var * (n / max(n - 1, 1))
                # cumulative average, as BatchNorm with momentum=None; (1 - w) * old + w * new rather than
                # old + w * (new - old), which loses tiny variances to the initial 1 (cancellation)
                w = 1.0 / (int(self.num_batches_tracked) + 1)
                self.running_mean.mul_(1.0 - w).add_(w * mean.detach())
                self.running_var.mul_(1.0 - w).add_(w * unbiased.detach())
                self.num_batches_tracked += 1
        else:
            if int(self.num_batches_tracked) == 0:
                raise RuntimeError('ProbeInputNorm in eval mode before any training batch: no statistics yet')
            mean, var = self.running_mean, self.running_var
        eps = self.rel_eps * var.mean() + torch.finfo(x.dtype).tiny  # tiny: an all-zero input stays finite
        return (x - mean[None, :, None, None]) * torch.rsqrt(var + eps)[None, :, None, None]


class ProbeHead(BaseModule):
    """The probe's head: :class:`ProbeInputNorm` (or nothing, ``normalize=False``) then the detector's
    ``bbox_head``, with the head's ``loss`` / ``predict`` interface on one BEV level."""

    def __init__(self, head_cfg: dict, normalize: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.head = MODELS.build(copy.deepcopy(head_cfg))
        self.norm = ProbeInputNorm(int(self.head.in_channels)) if normalize else nn.Identity()

    def _input(self, batch_feats) -> List[Tensor]:
        feats = batch_feats[0] if isinstance(batch_feats, (list, tuple)) else batch_feats
        return [self.norm(feats)]

    def loss(self, batch_feats, batch_data_samples: list) -> Dict[str, Tensor]:
        """The head's losses on (B, C, X, Y) maps (or a one-element list of them)."""
        return self.head.loss(self._input(batch_feats), batch_data_samples)

    def predict(self, batch_feats, batch_data_samples: list) -> list:
        """The head's detections on (B, C, X, Y) maps (or a one-element list of them)."""
        return self.head.predict(self._input(batch_feats), batch_data_samples)


@torch.no_grad()
def cached_features(model, dataset, progress: Optional[Callable[[], None]] = None) -> List[CachedSample]:
    """Frozen fused BEV maps (the head's input) of every sample of ``dataset``, model in eval mode."""
    model.eval()
    out = []
    for i in range(len(dataset)):
        data = model.data_preprocessor(pseudo_collate([dataset[i]]), False)
        metas = [s.metainfo for s in data['data_samples']]
        feat = model.extract_feat(data['inputs'], metas)[0]
        out.append(CachedSample(feat.detach().clone(), data['data_samples'][0]))
        if progress is not None:
            progress()
    return out


def train_head(head_cfg: dict, train: Sequence[CachedSample], iters: int, lr: float, seed: int,
               batch_size: int = 2, warmup: int = 20, max_grad_norm: float = 35.0, normalize: bool = True,
               loss_log: Optional[List[float]] = None,
               after_iter: Optional[Callable[[int, 'ProbeHead'], None]] = None) -> ProbeHead:
    """A fresh head (seeded) trained on the cached maps: AdamW (weight decay 0.01), linear warm-up then a
    constant lr, gradient clipping as the fine-tune config. Batches are drawn from seeded epoch shuffles.

    ``normalize``: the head reads the maps through :class:`ProbeInputNorm` (probe version 2; False: the raw
    maps, version 1). ``loss_log``, when given, receives the total loss of every iteration. ``after_iter(n, head)``
    is called after the n-th iteration (1-based; it may evaluate the head, which is put back in train mode)."""
    torch.manual_seed(seed)
    head = ProbeHead(head_cfg, normalize=normalize)
    init_weights_quietly(head)
    head.train()
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    queue: List[int] = []
    for it in range(iters):
        for g in opt.param_groups:
            g['lr'] = lr * (0.1 + 0.9 * min(1.0, it / max(warmup, 1)))
        batch = []
        while len(batch) < min(batch_size, len(train)):
            if not queue:
                queue = torch.randperm(len(train), generator=gen).tolist()
            batch.append(queue.pop())
        feats = torch.cat([train[i].feature for i in batch])
        losses = head.loss([feats], [train[i].data_sample for i in batch])
        loss = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if 'loss' in k)
        if loss_log is not None:
            loss_log.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), max_grad_norm)
        opt.step()
        if after_iter is not None:
            after_iter(it + 1, head)
            head.train()
    return head


@torch.no_grad()
def evaluate_head(head: ProbeHead, model, val: Sequence[CachedSample], evaluator: Evaluator) -> Dict[str, float]:
    """NuScenesMetric of the head's detections on the cached val maps: {'mAP', 'NDS'} (and every metric key)."""
    head.eval()
    for s in val:
        sample = copy.copy(s.data_sample)
        results = head.predict([s.feature], [sample.metainfo])
        evaluator.process(data_samples=model.add_pred_to_datasample([sample], results), data_batch=None)
    metrics = evaluator.evaluate(len(val))
    out = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    out['mAP'] = next(v for k, v in out.items() if k.endswith('/mAP'))
    out['NDS'] = next(v for k, v in out.items() if k.endswith('/NDS'))
    return out


class FrozenProbe:
    """The probes of one arm: features once, then one head per (label fraction, seed)."""

    def __init__(self, config: str, data_root: str, version: str, encoders: Optional[str],
                 progress: Optional[Callable[[], None]] = None,
                 cfg_options: Optional[Dict[str, Any]] = None, modules: Optional[Sequence[str]] = None) -> None:
        from clap_plugin.datasets.label_fraction import label_fraction_indices
        self._indices = label_fraction_indices
        self.cfg = probe_config(config, data_root, version, cfg_options)
        torch.manual_seed(0)  # scratch's random encoders: the same for every probe
        self.model = MODELS.build(copy.deepcopy(self.cfg.model))
        init_weights_quietly(self.model)
        self.loaded = load_encoders(self.model, encoders, modules) if encoders else 0
        for p in self.model.parameters():
            p.requires_grad_(False)
        t0 = time.time()
        train_ds = DATASETS.build(copy.deepcopy(self.cfg.probe_train_dataset))
        self.val_ds = DATASETS.build(copy.deepcopy(self.cfg.val_dataloader.dataset))
        self.train = cached_features(self.model, train_ds, progress)
        self.val = cached_features(self.model, self.val_ds, progress)
        self.feature_seconds = time.time() - t0
        self.scale = feature_scale(self.train)

    def _evaluate(self, head: ProbeHead) -> Dict[str, float]:
        evaluator = Evaluator([METRICS.build(copy.deepcopy(self.cfg.val_evaluator))])
        evaluator.dataset_meta = self.val_ds.metainfo
        return evaluate_head(head, self.model, self.val, evaluator)

    def curve(self, fraction: float, seed: int, rungs: Sequence[int], lr: float,
              normalize: bool = True) -> List[Dict[str, float]]:
        """One head trained to the last rung, scored on val after each rung: ``[{'step', 'mAP', 'NDS'}]`` (a run
        of N iterations is the first N of the longer one: the learning rate is constant after the warm-up)."""
        keep = self._indices(len(self.train), fraction, seed)
        out: List[Dict[str, float]] = []

        def score(n: int, head: ProbeHead) -> None:
            if n in set(rungs):
                m = self._evaluate(head)
                out.append(dict(step=n, mAP=m['mAP'], NDS=m['NDS']))

        train_head(self.cfg.model.bbox_head, [self.train[i] for i in keep], max(rungs), lr, seed,
                   normalize=normalize, after_iter=score)
        return out

    def run(self, fraction: float, seed: int, iters: int, lr: float, normalize: bool = True) -> Dict[str, float]:
        """Train a head on ``fraction`` of the train samples (subset seed = ``seed``) and score it on val.
        ``normalize=False`` is the scale-sensitive probe of version 1 (raw features into the head)."""
        keep = self._indices(len(self.train), fraction, seed)
        t0 = time.time()
        head = train_head(self.cfg.model.bbox_head, [self.train[i] for i in keep], iters, lr, seed,
                          normalize=normalize)
        train_seconds = time.time() - t0
        metrics = self._evaluate(head)
        return dict(mAP=metrics['mAP'], NDS=metrics['NDS'], num_labelled=len(keep), iterations=iters,
                    train_seconds=train_seconds, sec_per_iter=train_seconds / max(iters, 1),
                    seconds=time.time() - t0, probe_version=PROBE_VERSION if normalize else 1,
                    input_norm='ProbeInputNorm' if normalize else None)

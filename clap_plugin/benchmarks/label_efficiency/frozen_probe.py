"""The frozen-encoder probe: every encoder of the CPU-tiny BEVFusion frozen, only ``bbox_head`` trained.

With the encoders frozen and no augmentation, the BEV feature map the head reads is a fixed function of the
sample, so it is computed once per sample (:func:`cached_features`) and every probe of the arm (each label
fraction and seed) trains a freshly initialised head on the cached maps. A head iteration then costs a small
fraction of a full one. The head is scored with the fine-tune config's ``NuScenesMetric`` on the val split.
"""
import copy
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmdet3d.registry import DATASETS, METRICS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.runner.checkpoint import load_state_dict
from torch import Tensor

from clap_plugin.datasets.transforms.points_loading import SWEEP_LOADERS
from clap_plugin.utils.state_dicts import load_state_dict as read_state_dict

ANNOTATION_STEPS = ('ObjectRangeFilter', 'ObjectNameFilter')


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


def probe_config(config: str, data_root: str, version: str) -> Config:
    """The fine-tune config pointed at ``data_root`` (datasets and evaluator) and its nuScenes version."""
    cfg = Config.fromfile(config)
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


def load_encoders(model: torch.nn.Module, path: str) -> int:
    """Load an encoder export into ``model`` as ``load_from`` does; every tensor must find its place.
    Returns the number of tensors loaded."""
    state, _ = read_state_dict(path)
    own = model.state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise ValueError(f'{path}: {len(bad)} tensors do not fit the probe model (first: {bad[:3]})')
    load_state_dict(model, state, strict=False, logger='current')
    return len(state)


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
               batch_size: int = 2, warmup: int = 20, max_grad_norm: float = 35.0) -> torch.nn.Module:
    """A fresh head (seeded) trained on the cached maps: AdamW (weight decay 0.01), linear warm-up then a
    constant lr, gradient clipping as the fine-tune config. Batches are drawn from seeded epoch shuffles."""
    torch.manual_seed(seed)
    head = MODELS.build(copy.deepcopy(head_cfg))
    head.init_weights()
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
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), max_grad_norm)
        opt.step()
    return head


@torch.no_grad()
def evaluate_head(head, model, val: Sequence[CachedSample], evaluator: Evaluator) -> Dict[str, float]:
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
                 progress: Optional[Callable[[], None]] = None) -> None:
        from clap_plugin.datasets.label_fraction import label_fraction_indices
        self._indices = label_fraction_indices
        self.cfg = probe_config(config, data_root, version)
        torch.manual_seed(0)  # scratch's random encoders: the same for every probe
        self.model = MODELS.build(copy.deepcopy(self.cfg.model))
        self.model.init_weights()
        self.loaded = load_encoders(self.model, encoders) if encoders else 0
        for p in self.model.parameters():
            p.requires_grad_(False)
        t0 = time.time()
        train_ds = DATASETS.build(copy.deepcopy(self.cfg.probe_train_dataset))
        self.val_ds = DATASETS.build(copy.deepcopy(self.cfg.val_dataloader.dataset))
        self.train = cached_features(self.model, train_ds, progress)
        self.val = cached_features(self.model, self.val_ds, progress)
        self.feature_seconds = time.time() - t0

    def run(self, fraction: float, seed: int, iters: int, lr: float) -> Dict[str, float]:
        """Train a head on ``fraction`` of the train samples (subset seed = ``seed``) and score it on val."""
        keep = self._indices(len(self.train), fraction, seed)
        t0 = time.time()
        head = train_head(self.cfg.model.bbox_head, [self.train[i] for i in keep], iters, lr, seed)
        train_seconds = time.time() - t0
        evaluator = Evaluator([METRICS.build(copy.deepcopy(self.cfg.val_evaluator))])
        evaluator.dataset_meta = self.val_ds.metainfo
        metrics = evaluate_head(head, self.model, self.val, evaluator)
        return dict(mAP=metrics['mAP'], NDS=metrics['NDS'], num_labelled=len(keep), iterations=iters,
                    train_seconds=train_seconds, sec_per_iter=train_seconds / max(iters, 1),
                    seconds=time.time() - t0)

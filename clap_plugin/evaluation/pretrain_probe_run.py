"""Probe a CLAP pre-training from outside: prototype collapse and agreement, curvature enrichment on boxes, and a
frozen-feature linear probe of object vs background per BEV cell (the measures: :mod:`.pretrain_probe`).

On ``--max-train`` samples of the train info file, each sample is one training step of the model (masking on,
past the curvature warm-up) for the prototype and curvature figures; the unmasked BEV features of the same
samples fit the linear probe, which is scored on ``--max-val`` samples of the val info file. Prints the figures
and writes them as JSON (atomically).
"""
import argparse
import json
import os.path as osp
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

ESTIMATORS = {
    'fd_0.06m': dict(estimator='finite_difference', fd_step=0.06),
    'fd_0.3m': dict(estimator='finite_difference', fd_step=0.3),
    'fd_0.6m': dict(estimator='finite_difference', fd_step=0.6),
    'fd_1.2m': dict(estimator='finite_difference', fd_step=1.2),
    'exact': dict(estimator='exact'),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--checkpoint', help='pre-training checkpoint (default: the random initialisation)')
    p.add_argument('--data-root', required=True)
    p.add_argument('--train-ann', default='nuscenes_infos_train.pkl',
                   help='info file of the samples the prototype/curvature figures and the probe fit use')
    p.add_argument('--val-ann', default='nuscenes_infos_val.pkl', help='info file the linear probe is scored on')
    p.add_argument('--max-train', type=int, default=48)
    p.add_argument('--max-val', type=int, default=48)
    p.add_argument('--neg-fraction', type=float, default=0.1, help='share of background cells kept for the fit')
    p.add_argument('--seed', type=int, default=0, help='seed of the initialisation (random baseline) and masks')
    p.add_argument('--out', help='JSON output path')
    return p.parse_args(argv)


def build_model(cfg, checkpoint: Optional[str], seed: int):
    """The pre-training model, seeded, from ``checkpoint`` or at its random initialisation, in training mode
    (BN on the batch statistics of each probe batch, as in training: no running statistics)."""
    import numpy as np
    import torch
    from mmdet3d.registry import MODELS
    from mmengine.runner import load_checkpoint
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if checkpoint:
        if not osp.isfile(checkpoint):
            raise SystemExit(f'error: checkpoint {checkpoint!r} does not exist')
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    return model.train()


def probe_dataset(cfg, data_root: str, ann: str) -> Tuple[object, list]:
    """The pre-training dataset on ``ann`` with the probe's pipeline, and the info entries (their boxes)."""
    from mmdet3d.registry import DATASETS
    from mmengine.fileio import load

    from clap_plugin.evaluation.pretrain_probe import probe_pipeline
    path = osp.join(data_root, ann)
    if not osp.isfile(path):
        raise SystemExit(f'error: info file {path!r} does not exist (make it with tools/create_data.py)')
    ds_cfg = cfg.train_dataloader.dataset.copy()
    ds_cfg.update(data_root=data_root, ann_file=ann, pipeline=probe_pipeline(ds_cfg.pipeline))
    ds = DATASETS.build(ds_cfg)
    infos = load(path)['data_list']
    if len(infos) != len(ds):
        raise SystemExit(f'error: {path!r} has {len(infos)} entries but the dataset {len(ds)}')
    return ds, infos


@dataclass
class CellRows:
    """Per BEV (``lidar``, ``camera``, ``fused``): the feature rows and object labels of the probed cells."""
    feats: Dict[str, List] = field(default_factory=dict)
    labels: Dict[str, List] = field(default_factory=dict)

    def add(self, name: str, rows, labels) -> None:
        self.feats.setdefault(name, []).append(rows)
        self.labels.setdefault(name, []).append(labels)


class PretrainProbeRun:
    """The probe of one model over a train and a val split; :meth:`run` returns the figures."""

    def __init__(self, model, args: argparse.Namespace) -> None:
        import torch

        from clap_plugin.evaluation import pretrain_probe as pp
        self.model, self.args, self.pp = model, args, pp
        self.gen = torch.Generator().manual_seed(args.seed)
        self.prototypes = pp.PrototypeProbe()
        self.enrichment: Dict[str, list] = {}
        self.fit, self.score = CellRows(), CellRows()

    def sample(self, split: str, ds, infos: list, i: int) -> None:
        """One sample: on the train split a training step (prototype, curvature figures) and the fit cells; on
        the val split the scored cells."""
        from mmengine.dataset import pseudo_collate
        pp, model, args = self.pp, self.model, self.args
        data = model.data_preprocessor(pseudo_collate([ds[i]]), training=True)
        boxes = pp.boxes_of_info(infos[i])
        if split == 'train':
            pp.prototype_and_curvature_figures(model, data, [boxes], self.prototypes, ESTIMATORS, self.enrichment,
                                               rng_seed=args.seed * 1000 + i)
        feats = pp.bev_features(model, data)
        grid = tuple(next(iter(feats.values())).shape[-2:])
        labels = pp.bev_cells_in_boxes(grid, model.point_cloud_range, boxes).reshape(-1)
        for name, f in feats.items():
            rows = f[0].reshape(f.shape[1], -1).t().float()
            if split == 'train':
                self.fit.add(name, *pp.subsample_cells(rows, labels, args.neg_fraction, self.gen))
            else:
                self.score.add(name, rows, labels)

    def run(self, train: Tuple[object, list], val: Tuple[object, list]) -> dict:
        import torch
        pp, args, t0 = self.pp, self.args, time.time()
        n_train, n_val = min(args.max_train, len(train[0])), min(args.max_val, len(val[0]))
        for split, (ds, infos), n in (('train', train, n_train), ('val', val, n_val)):
            for i in range(n):
                self.sample(split, ds, infos, i)
                print(f'\r[probe] {split} {i + 1}/{n} ({time.time() - t0:.0f} s)', end='', file=sys.stderr,
                      flush=True)
        print(file=sys.stderr)
        result = dict(config=args.config, checkpoint=args.checkpoint or 'random-init', seed=args.seed,
                      train_samples=n_train, val_samples=n_val)
        if self.model.prototype_loss is not None and self.prototypes.cells:
            result['prototypes'] = self.prototypes.summary(self.model.prototype_loss.prototypes.detach())
        result['curvature_enrichment'] = {k: pp.enrichment_ratio(v) for k, v in self.enrichment.items()}
        result['linear_probe_ap'], result['linear_probe_pos_share'] = {}, {}
        for name in self.fit.feats:
            xt, yt = torch.cat(self.fit.feats[name]), torch.cat(self.fit.labels[name])
            xv, yv = torch.cat(self.score.feats[name]), torch.cat(self.score.labels[name])
            result['linear_probe_ap'][name] = pp.linear_probe_ap(xt, yt, xv, yv, seed=args.seed)
            result['linear_probe_pos_share'][name] = float(yv.float().mean())
        result['seconds'] = time.time() - t0
        return result


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmdet3d.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.logging import MessageHub
    register_all_modules()
    import clap_plugin  # noqa: F401
    from clap_plugin.utils.atomic_write import write_json_atomic

    if not osp.isfile(args.config):
        raise SystemExit(f'error: config {args.config!r} does not exist')
    cfg = Config.fromfile(args.config)
    data_root = args.data_root.rstrip('/') + '/'
    model = build_model(cfg, args.checkpoint, args.seed)
    MessageHub.get_current_instance().update_info('epoch', 10**6)  # past the curvature warm-up
    train, val = probe_dataset(cfg, data_root, args.train_ann), probe_dataset(cfg, data_root, args.val_ann)
    result = PretrainProbeRun(model, args).run(train, val)
    print(json.dumps(result, indent=2))
    if args.out:
        write_json_atomic(args.out, result)
    return 0

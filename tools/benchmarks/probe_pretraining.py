"""Probe a CLAP pre-training from outside: prototype collapse and agreement, curvature enrichment on boxes, and a
frozen-feature linear probe of object vs background per BEV cell (see clap_plugin/evaluation/pretrain_probe.py).

    python tools/benchmarks/probe_pretraining.py configs/clap_pretrain_nus_cpu-tiny.py \
        --checkpoint work_dirs/pretrain/epoch_4.pth --data-root data/nuscenes/ --out probe.json
    # the same model at its random initialisation (the probe's baseline): leave out --checkpoint

Prints one table and writes the figures as JSON (atomically).
"""
import argparse
import json
import os.path as osp
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
ESTIMATORS = {
    'fd_0.06m': dict(estimator='finite_difference', fd_step=0.06),
    'fd_0.3m': dict(estimator='finite_difference', fd_step=0.3),
    'fd_0.6m': dict(estimator='finite_difference', fd_step=0.6),
    'fd_1.2m': dict(estimator='finite_difference', fd_step=1.2),
    'exact': dict(estimator='exact'),
}


def parse_args(argv=None):
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


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, ROOT)
    import numpy as np
    import torch
    from mmdet3d.registry import DATASETS, MODELS
    from mmdet3d.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.fileio import load
    from mmengine.runner import load_checkpoint
    register_all_modules()
    import clap_plugin  # noqa: F401
    from clap_plugin.evaluation import pretrain_probe as pp

    if not osp.isfile(args.config):
        raise SystemExit(f'error: config {args.config!r} does not exist')
    cfg = Config.fromfile(args.config)
    data_root = args.data_root.rstrip('/') + '/'
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if args.checkpoint:
        if not osp.isfile(args.checkpoint):
            raise SystemExit(f'error: checkpoint {args.checkpoint!r} does not exist')
        load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True, logger='silent')
    model.train()  # BN on the batch statistics of each probe batch, as in training (no running statistics)

    def dataset(ann):
        path = osp.join(data_root, ann)
        if not osp.isfile(path):
            raise SystemExit(f'error: info file {path!r} does not exist (make it with tools/create_data.py)')
        ds_cfg = cfg.train_dataloader.dataset.copy()
        ds_cfg.update(data_root=data_root, ann_file=ann, pipeline=pp.probe_pipeline(ds_cfg.pipeline))
        ds = DATASETS.build(ds_cfg)
        infos = load(path)['data_list']
        if len(infos) != len(ds):
            raise SystemExit(f'error: {path!r} has {len(infos)} entries but the dataset {len(ds)}')
        return ds, infos

    def batch(ds, i):
        return model.data_preprocessor(pseudo_collate([ds[i]]), training=True)

    from mmengine.logging import MessageHub
    MessageHub.get_current_instance().update_info('epoch', 10**6)  # past the curvature warm-up
    t0 = time.time()
    train_ds, train_infos = dataset(args.train_ann)
    val_ds, val_infos = dataset(args.val_ann)
    gen = torch.Generator().manual_seed(args.seed)
    probe = pp.PrototypeProbe()
    enrichment = {}
    fit = {}
    score = {}
    grid = None
    n_train, n_val = min(args.max_train, len(train_ds)), min(args.max_val, len(val_ds))
    for split, ds, infos, n in (('train', train_ds, train_infos, n_train), ('val', val_ds, val_infos, n_val)):
        for i in range(n):
            data = batch(ds, i)
            boxes = pp.boxes_of_info(infos[i])
            if split == 'train':
                pp.prototype_and_curvature_figures(model, data, [boxes], probe, ESTIMATORS, enrichment,
                                                   rng_seed=args.seed * 1000 + i)
            feats = pp.bev_features(model, data)
            grid = tuple(next(iter(feats.values())).shape[-2:])
            labels = pp.bev_cells_in_boxes(grid, model.point_cloud_range, boxes).reshape(-1)
            for name, f in feats.items():
                rows = f[0].reshape(f.shape[1], -1).t().float()
                if split == 'train':
                    rows, lab = pp.subsample_cells(rows, labels, args.neg_fraction, gen)
                else:
                    lab = labels
                dst = fit if split == 'train' else score
                dst.setdefault(name, ([], []))
                dst[name][0].append(rows)
                dst[name][1].append(lab)
            print(f'\r[probe] {split} {i + 1}/{n} ({time.time() - t0:.0f} s)', end='', file=sys.stderr, flush=True)
    print(file=sys.stderr)
    result = dict(config=args.config, checkpoint=args.checkpoint or 'random-init', seed=args.seed,
                  train_samples=n_train, val_samples=n_val)
    if model.prototype_loss is not None and probe.cells:
        result['prototypes'] = probe.summary(model.prototype_loss.prototypes.detach())
    result['curvature_enrichment'] = {k: pp.enrichment_ratio(v) for k, v in enrichment.items()}
    result['linear_probe_ap'] = {}
    result['linear_probe_pos_share'] = {}
    for name in fit:
        xt, yt = torch.cat(fit[name][0]), torch.cat(fit[name][1])
        xv, yv = torch.cat(score[name][0]), torch.cat(score[name][1])
        result['linear_probe_ap'][name] = pp.linear_probe_ap(xt, yt, xv, yv, seed=args.seed)
        result['linear_probe_pos_share'][name] = float(yv.float().mean())
    result['seconds'] = time.time() - t0
    print(json.dumps(result, indent=2))
    if args.out:
        from clap_plugin.utils.atomic_write import write_json_atomic
        write_json_atomic(args.out, result)
    return 0


if __name__ == '__main__':
    sys.exit(main())

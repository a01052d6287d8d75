"""Where a CPU-tiny fine-tuning iteration goes, and what the label-efficiency benchmark saves, side by side.

In one process, on the same ``--samples`` training samples (a small label fraction, read ``--repeats`` times):

* data loading per sample with the camera loader's decoded-image cache off and on;
* one full training iteration (batch 2: forward, backward, AdamW step), split into its modules' forward times;
* one iteration of the frozen-encoder probe (only ``bbox_head`` on cached BEV maps).

Prints the medians and the ratios; ``--out`` writes them as JSON (atomically).
"""
import argparse
import copy
import statistics
import time
from typing import Dict, List, Optional, Tuple

MODULES = ('img_backbone', 'img_neck', 'view_transform', 'pts_voxel_encoder', 'pts_middle_encoder', 'fusion_layer',
           'pts_backbone', 'pts_neck', 'bbox_head')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data-root', required=True)
    p.add_argument('--config', default='configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py')
    p.add_argument('--samples', type=int, default=4)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--iters', type=int, default=5, help='timed training iterations (after one warm-up)')
    p.add_argument('--out')
    return p.parse_args(argv)


def loading_times(ds_cfg, samples: int, repeats: int, cache_bytes: int) -> Tuple[object, List[float]]:
    """The dataset with the camera loader's image cache set to ``cache_bytes``, and the seconds of every read."""
    from mmdet3d.registry import DATASETS
    c = copy.deepcopy(ds_cfg)
    c.pipeline[0]['cache_bytes'] = cache_bytes
    ds = DATASETS.build(c)
    n = min(samples, len(ds))
    times = []
    for _ in range(repeats):
        for i in range(n):
            t0 = time.perf_counter()
            ds[i]
            times.append(time.perf_counter() - t0)
    return ds, times


def time_module_forwards(model) -> Dict[str, List[float]]:
    """Hooks on the detector's modules that record each forward's seconds (the list, filled as they run)."""
    forward: Dict[str, List[float]] = {m: [] for m in MODULES}
    for name in MODULES:
        mod = getattr(model, name)
        mod.register_forward_pre_hook(lambda m, i, name=name: forward[name].append(-time.perf_counter()))
        mod.register_forward_hook(lambda m, i, o, name=name: forward[name].__setitem__(
            -1, forward[name][-1] + time.perf_counter()))
    return forward


def training_iterations(cfg, ds, n: int, iters: int):
    """The model, the seconds of ``iters`` full iterations (after a warm-up) and the median module forwards."""
    import torch
    from mmdet3d.registry import MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    forward = time_module_forwards(model)
    batches = [pseudo_collate([ds[(2 * k) % n], ds[(2 * k + 1) % n]]) for k in range(iters + 1)]
    full = []
    for k, batch in enumerate(batches):
        t0 = time.perf_counter()
        data = model.data_preprocessor(batch, True)
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        optim.update_params(loss)
        if k > 0:
            full.append(time.perf_counter() - t0)
    return model, full, {m: statistics.median(v[1:]) for m, v in forward.items() if len(v) > 1}


def probe_iteration(cfg, model, ds, n: int, iters: int) -> float:
    """Seconds of one frozen-encoder probe iteration (``bbox_head`` on the cached BEV maps of ``n`` samples)."""
    import torch
    from mmengine.dataset import pseudo_collate

    from clap_plugin.benchmarks.label_efficiency.frozen_probe import CachedSample, train_head
    model.eval()
    with torch.no_grad():
        cached_maps = []
        for i in range(n):
            d = model.data_preprocessor(pseudo_collate([ds[i]]), False)
            feat = model.extract_feat(d['inputs'], [s.metainfo for s in d['data_samples']])[0]
            cached_maps.append(CachedSample(feat, d['data_samples'][0]))
    t0 = time.perf_counter()
    train_head(cfg.model.bbox_head, cached_maps, iters, 1e-3, seed=0)
    return (time.perf_counter() - t0) / iters


def print_result(r: dict) -> None:
    plain, cached, it, probe = (r['data_per_sample_plain'], r['data_per_sample_cached'], r['full_iteration'],
                                r['probe_iteration'])
    print(f'data loading per sample: {plain:.3f} s decoded each time, {cached:.3f} s from the image cache '
          f'({plain / cached:.2f}x)')
    print(f'full training iteration (batch 2, data excluded): {it:.2f} s; data loading would add '
          f'{2 * plain:.2f} s uncached ({100 * r["data_share_of_iteration"]:.0f}% of the step), '
          f'{2 * cached:.2f} s cached')
    print('module forward times (s): ' + ', '.join(f'{k} {v:.3f}' for k, v in r['module_forward'].items()))
    print(f'frozen-encoder probe iteration (bbox_head on cached maps): {probe:.3f} s ({it / probe:.1f}x cheaper)')


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import torch
    from mmdet3d.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules(init_default_scope=True)
    import clap_plugin  # noqa: F401
    from clap_plugin.utils.atomic_write import write_json_atomic

    cfg = Config.fromfile(args.config)
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    while ds_cfg.get('type') == 'LabelFractionDataset':
        ds_cfg = ds_cfg.dataset
    ds_cfg.data_root = args.data_root if args.data_root.endswith('/') else args.data_root + '/'
    _, t_plain = loading_times(ds_cfg, args.samples, args.repeats, 0)
    ds, t_cached = loading_times(ds_cfg, args.samples, args.repeats, 2**31)
    n = min(args.samples, len(ds))
    # steady state of the cache: the repeats after the first pass
    plain, cached = statistics.median(t_plain[n:]), statistics.median(t_cached[n:])
    model, full, fwd = training_iterations(cfg, ds, n, args.iters)
    probe = probe_iteration(cfg, model, ds, n, args.iters)
    it = statistics.median(full)
    result = dict(data_per_sample_plain=plain, data_per_sample_cached=cached, data_ratio=plain / cached,
                  full_iteration=it, data_share_of_iteration=2 * plain / (it + 2 * plain),
                  module_forward=fwd, probe_iteration=probe, probe_ratio=it / probe,
                  samples=n, repeats=args.repeats, iters=args.iters, threads=torch.get_num_threads())
    print_result(result)
    if args.out:
        write_json_atomic(args.out, result)
        print(f'wrote {args.out}')
    return 0

"""Per pre-training iteration: time and peak memory of
(a) CLAP with curvature sampling at the paper's ray budgets (8192 LiDAR + 6 x 1024 camera rays),
(b) joint rendering without sampling: every keyframe LiDAR point plus as many pixels per camera as asked
    (``--joint-pixels``; all pixels do not fit on this machine), rendered in one chunk with its full graph,
(c) UniPAD-style separate pre-training: a LiDAR-only and a camera-only iteration (512 rays per camera),
plus the share of the curvature scoring in (a). Each variant runs in its own process (peak RSS is per process),
side by side in one invocation, and the ratios (a)/(b), (a)/(c) are printed.

Entry point: ``tools/benchmarks/bench_pretrain_iteration.py``; each variant runs as
``python -m clap_plugin.benchmarks.pretrain_iteration --variant NAME``.
"""
import argparse
import copy
import json
import os.path as osp
import sys
import time
from typing import List, Optional

from clap_plugin.benchmarks.child_process import REPO, run_module
from clap_plugin.benchmarks.timing import peak_rss_mib

VARIANTS = ('clap_curvature', 'joint_all', 'unipad_lidar', 'unipad_camera')


def variant_model(cfg_model, variant: str, joint_lidar_rays: int, joint_pixels: int):
    """The pre-training model dict of one variant, at the paper's ray budgets."""
    m = copy.deepcopy(cfg_model)
    m.ray_selector.update(num_lidar_rays=8192, num_pixels_per_camera=1024, warmup_epochs=1)
    m.rendering_head.update(num_stratified=72, num_importance=24, up_sample_steps=4)
    if variant == 'joint_all':
        m.ray_selector.update(num_lidar_rays=joint_lidar_rays, num_pixels_per_camera=joint_pixels)
        m.rendering_head.update(ray_chunk_size=10**9, checkpoint_chunks=False)
    elif variant == 'unipad_lidar':
        m.update(img_backbone=None, img_neck=None, view_transform=None, fusion_layer=None, render_camera=False,
                 prototype_loss=None, gram_regularizer=None, lidar_mask_ratio=0.8)
        m.ray_selector.warmup_epochs = 10**9  # UniPAD samples uniformly
        m.pts_backbone.in_channels = m.pts_middle_encoder.output_channels * 2
    elif variant == 'unipad_camera':
        m.update(pts_voxel_encoder=None, pts_middle_encoder=None, fusion_layer=None, render_lidar=False,
                 prototype_loss=None, gram_regularizer=None, camera_mask_ratio=0.3)
        # UniPAD's camera rays: pixels drawn uniformly among those where LiDAR points project
        m.ray_selector.update(num_pixels_per_camera=512, warmup_epochs=10**9, pixel_policy='through_points')
        m.pts_backbone.in_channels = m.view_transform.out_channels
    return m


def _time_scoring(selector) -> List[float]:
    """Wrap the selector's curvature scoring with a timer; returns the one-element accumulator of its seconds."""
    score_time = [0.0]
    orig = selector.point_weights

    def timed(*a, **k):
        t = time.perf_counter()
        out = orig(*a, **k)
        score_time[0] += time.perf_counter() - t
        return out
    selector.point_weights = timed
    return score_time


def run_variant(args: argparse.Namespace) -> dict:
    """One variant in this process: mean seconds per iteration and of its curvature scoring, peak RSS."""
    import numpy as np
    import torch
    from mmdet3d.registry import DATASETS, MODELS
    from mmdet3d.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.logging import MessageHub
    register_all_modules()
    import clap_plugin  # noqa: F401

    torch.manual_seed(0)
    np.random.seed(0)
    cfg = Config.fromfile(args.config)
    cfg.train_dataloader.dataset.data_root = args.data_root
    model = MODELS.build(variant_model(cfg.model, args.variant, args.joint_lidar_rays, args.joint_pixels))
    model.train()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[0]]), training=True)
    MessageHub.get_current_instance().update_info('epoch', 5)  # past the warm-up: curvature sampling
    score_time = _time_scoring(model.ray_selector)
    times = []
    for i in range(args.iters + 1):
        score_time[0] = 0.0
        t = time.perf_counter()
        losses = model.loss(data['inputs'], data['data_samples'])
        sum(losses.values()).backward()
        model.zero_grad(set_to_none=True)
        if i > 0:  # the first iteration warms up allocators and caches
            times.append((time.perf_counter() - t, score_time[0]))
    it = float(np.mean([a for a, _ in times]))
    score = float(np.mean([b for _, b in times]))
    n_rays = int(model.ray_selector.num_lidar_rays) if model.render_lidar else 0
    return dict(variant=args.variant, iter_s=it, scoring_s=score, peak_rss_mib=peak_rss_mib(),
                lidar_rays_budget=n_rays, pixels_per_camera=int(model.ray_selector.num_pixels_per_camera))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default=osp.join(REPO, 'configs', 'clap_pretrain_nus_cpu-tiny.py'))
    p.add_argument('--data-root', required=True)
    p.add_argument('--joint-pixels', type=int, default=2048, help='pixels per camera of variant (b)')
    p.add_argument('--joint-lidar-rays', type=int, default=10**9,
                   help='LiDAR rays of variant (b) (default: every keyframe point; lower it when it does not fit)')
    p.add_argument('--iters', type=int, default=2)
    p.add_argument('--variant', default=None, choices=VARIANTS, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def print_ratios(results: dict, joint_pixels: int) -> None:
    a, b = results['clap_curvature'], results['joint_all']
    c_time = results['unipad_lidar']['iter_s'] + results['unipad_camera']['iter_s']
    c_mem = max(results['unipad_lidar']['peak_rss_mib'], results['unipad_camera']['peak_rss_mib'])
    print(f"(a)/(b): time {a['iter_s'] / b['iter_s']:.3f}  peak memory {a['peak_rss_mib'] / b['peak_rss_mib']:.3f}"
          f"  ((b) renders {b['lidar_rays_budget']} LiDAR rays (cap) + {joint_pixels} pixels per camera "
          'in one graph, no chunking)')
    print(f"(a)/(c): time {a['iter_s'] / c_time:.3f}  peak memory {a['peak_rss_mib'] / c_mem:.3f}  "
          '((c) = LiDAR-only + camera-only iteration; memory: the larger of the two)')
    print(f"curvature scoring share of (a): {100 * a['scoring_s'] / a['iter_s']:.2f} %")


def main(argv: Optional[List[str]] = None) -> int:
    """Every variant in its own process, one after the other; with ``--variant``, that variant here."""
    args = parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args)))
        return 0
    results = {}
    for variant in VARIANTS:
        proc = run_module('clap_plugin.benchmarks.pretrain_iteration', [
            '--config', args.config, '--data-root', args.data_root, '--joint-pixels', args.joint_pixels,
            '--joint-lidar-rays', args.joint_lidar_rays, '--iters', args.iters, '--variant', variant])
        if proc.returncode != 0:
            print(f'{variant} failed:\n{proc.stderr[-3000:]}', file=sys.stderr)
            return 1
        results[variant] = r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{variant:15s} iter {r['iter_s']:8.2f} s  peak RSS {r['peak_rss_mib']:8.0f} MiB  "
              f"curvature scoring {r['scoring_s']:.3f} s")
    print_ratios(results, args.joint_pixels)
    return 0


if __name__ == '__main__':
    sys.exit(main())

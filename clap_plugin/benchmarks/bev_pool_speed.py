"""Benchmark BEV pooling: the pure-PyTorch scatter-add ``bev_pool`` against the naive per-point loop.

Frustum geometry comes from ``CLAPDepthLSSTransform`` with a nuScenes-like 6-camera rig, so the share of
points outside the grid and the clustering of points in cells are realistic. Two sizes:

- small: 30 depth bins x 6 cameras x 8 x 22 features, 16 channels, into 90 x 90 cells;
- full (BEVFusion lidar-cam): 118 depth bins x 6 cameras x 32 x 88 features, 80 channels, into 360 x 360.

Both versions run side by side in one process on the same inputs; the script checks that they agree and
prints time per call (median) and the ratio. Usage::

    python tools/benchmarks/bench_bev_pool.py [--device cuda] [--repeats 5] [--skip-naive-full]
"""
import argparse
import math
import time
from typing import Dict, List, Optional

import numpy as np
import torch

from clap_plugin.benchmarks.timing import median_seconds, sync
from clap_plugin.models.bevfusion import CLAPDepthLSSTransform, bev_pool, bev_pool_reference

SIZES = {
    'small': dict(image_size=(64, 176), feature_size=(8, 22), dbound=(1.0, 60.0, 2.0), channels=16, cell=1.2),
    'full': dict(image_size=(256, 704), feature_size=(32, 88), dbound=(1.0, 60.0, 0.5), channels=80, cell=0.3),
}


def _rig(image_size) -> Dict[str, torch.Tensor]:
    """Six cameras around the car (nuScenes yaws), 1600x900 intrinsics, resize + bottom crop to image_size."""
    l2c, k, aug = [], [], []
    for yaw in (0.0, 55.0, -55.0, 180.0, 110.0, -110.0):
        t = math.radians(yaw)
        rot = np.array([[math.sin(t), -math.cos(t), 0.0], [0.0, 0.0, -1.0], [math.cos(t), math.sin(t), 0.0]])
        m = np.eye(4)
        m[:3, :3] = rot
        m[:3, 3] = -rot @ np.array([0.5 * math.cos(t), 0.5 * math.sin(t), 1.5])
        l2c.append(m)
        kk = np.eye(4)
        kk[0, 0] = kk[1, 1] = 1266.0
        kk[0, 2], kk[1, 2] = 800.0, 450.0
        k.append(kk)
        s = image_size[1] / 1600.0
        a = np.eye(4)
        a[0, 0] = a[1, 1] = s
        a[1, 3] = -(900.0 * s - image_size[0])
        aug.append(a)
    l2c, k, aug = (torch.tensor(np.stack(v), dtype=torch.float32)[None] for v in (l2c, k, aug))
    return dict(cam2lidar=torch.inverse(l2c), cam2img=k, img_aug_matrix=aug, lidar_aug_matrix=torch.eye(4)[None])


def make_case(name: str, device: torch.device):
    """(feats (P, C), coords (P, 4), grid (X, Y, Z)) for one of ``SIZES``."""
    s = SIZES[name]
    vt = CLAPDepthLSSTransform(in_channels=8, out_channels=s['channels'], image_size=s['image_size'],
                               feature_size=s['feature_size'], xbound=(-54.0, 54.0, s['cell']),
                               ybound=(-54.0, 54.0, s['cell']), zbound=(-10.0, 10.0, 20.0), dbound=s['dbound'])
    rig = _rig(s['image_size'])
    with torch.no_grad():
        geom = vt.get_geometry(rig['cam2lidar'], rig['cam2img'], rig['img_aug_matrix'], rig['lidar_aug_matrix'])
    cell = torch.trunc((geom - (vt.bx - vt.dx / 2.0)) / vt.dx).long().view(-1, 3)  # vt's default 'trunc'
    coords = torch.cat([torch.zeros_like(cell[:, :1]), cell], dim=1).to(device)
    gen = torch.Generator().manual_seed(0)
    feats = torch.rand(coords.shape[0], s['channels'], generator=gen).to(device)
    grid = tuple(int(v) for v in vt.nx.tolist())
    return feats, coords, grid


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--skip-naive-full', action='store_true', help='do not run the naive loop at full size')
    parser.add_argument('--threads', type=int, default=0, help='torch.set_num_threads (0: leave as is)')
    return parser.parse_args(argv)


def table_row(name: str, device: torch.device, repeats: int, skip_naive: bool) -> str:
    """One Markdown row: both versions timed on the same inputs, after checking that they agree."""
    feats, coords, grid = make_case(name, device)
    kept = int(((coords[:, 1:] >= 0) & (coords[:, 1:] < torch.tensor(grid, device=device))).all(1).sum())
    fast = median_seconds(lambda: bev_pool(feats, coords, 1, grid), device, repeats, warmup=True)
    feats_g = feats.clone().requires_grad_(True)
    fast_fb = median_seconds(lambda: bev_pool(feats_g, coords, 1, grid).sum().backward(), device, repeats,
                             warmup=True)
    if skip_naive:
        naive_s, ratio = float('nan'), float('nan')
    else:
        t0 = time.perf_counter()
        ref = bev_pool_reference(feats, coords, 1, grid)
        sync(device)
        naive_s = time.perf_counter() - t0
        out = bev_pool(feats, coords, 1, grid)
        err = (out - ref).abs().max().item()
        assert err <= 1e-3 * max(1.0, ref.abs().max().item()), f'bev_pool differs from the loop by {err}'
        ratio = naive_s / fast
    return (f'| {name} | {coords.shape[0]} ({kept}) | {feats.shape[1]} | {grid[0]} x {grid[1]} x {grid[2]} '
            f'| {fast:.4f} | {fast_fb:.4f} | {naive_s:.2f} | {ratio:.0f}x |')


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f'device={device} torch={torch.__version__} threads={torch.get_num_threads()}')
    print('| size | points (kept) | channels | cells (X x Y x Z) | bev_pool fwd s/call | bev_pool fwd+bwd s/call '
          '| naive loop s/call | naive / bev_pool |')
    print('|---|---|---|---|---|---|---|---|')
    for name in ('small', 'full'):
        print(table_row(name, device, args.repeats, skip_naive=name == 'full' and args.skip_naive_full), flush=True)

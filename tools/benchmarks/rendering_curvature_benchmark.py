"""Benchmark of the CLAP rendering head and the curvature scoring (issue 3).

Measures, in one run on one device:
* rendering forward + backward throughput (rays/s) and peak memory for N rays (96 samples per ray) at a
  fixed chunk size, and for a fixed N at several chunk sizes (memory follows the chunk, not N);
* the cost of curvature scoring of 8192 candidate points relative to one forward + backward of the
  rendering of 8192 + 6144 rays (the ratio is taken from timings of the same run).

Each table row runs in a fresh process. Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU
the process' peak resident set (VmHWM, reset through /proc/self/clear_refs) above the resident set before
the step, with glibc told to serve large blocks by mmap (freed memory leaves the resident set). The last
column is the memory autograd keeps *between* chunks (saved tensors outside the checkpointed chunks: the
volume and the per-ray outputs), the part that could grow with N.

Usage: python tools/benchmarks/rendering_curvature_benchmark.py [--device cuda] [--rays 1024 4096 16384 65536]
(``--rays --chunks`` with no values: only the curvature / rendering ratio)
"""
import argparse
import json
import os
import subprocess
import sys
import time
from typing import Optional

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS

import clap_plugin  # noqa: F401
from clap_plugin.models.ray_selection import CurvatureRaySelector
from clap_plugin.models.rendering import RayBatch


def _status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


class PeakMemory:
    """Peak memory (MiB) of the enclosed code above the memory in use when it starts."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mib = float('nan')

    def __enter__(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset the peak resident set (VmHWM) to the current one
            self.start = _status_kib('VmRSS') * 1024
        return self

    def __exit__(self, *exc):
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = _status_kib('VmHWM') * 1024
        self.mib = (peak - self.start) / 2 ** 20


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def make_rays(n: int, gen: torch.Generator, device: torch.device) -> RayBatch:
    """LiDAR-like rays from near the origin, mostly horizontal, with range and colour targets."""
    d = torch.randn(n, 3, generator=gen)
    d[:, 2] = d[:, 2] * 0.1 - 0.05
    d = F.normalize(d, dim=-1)
    o = torch.zeros(n, 3)
    o[:, 2] = 1.8
    return RayBatch.create(o.to(device), d.to(device), range=(5.0 + 40.0 * torch.rand(n, generator=gen)).to(device),
                           rgb=torch.rand(n, 3, generator=gen).to(device))


def render_step(head, volume, rays, device, kept: Optional[dict] = None) -> float:
    """Seconds of one forward + backward of the rendering loss.

    With ``kept``, the storages that autograd saves *outside* the checkpointed chunks during the forward
    are recorded there (data pointer -> bytes): the graph memory that grows with the number of rays.
    """
    volume.grad = None
    head.zero_grad(set_to_none=True)
    _sync(device)
    t = time.perf_counter()
    if kept is None:
        losses = head.loss(volume, [rays])
    else:
        def pack(x):
            kept[x.untyped_storage().data_ptr()] = x.untyped_storage().nbytes()
            return x

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            losses = head.loss(volume, [rays])
    sum(losses.values()).backward()
    _sync(device)
    return time.perf_counter() - t


def _setup(device: torch.device, chunk: int):
    gen = torch.Generator().manual_seed(0)
    # the paper-sized volume: C_r = 32 channels, Z = 5 over z in [-5, 3], 180 x 180 BEV cells
    volume = torch.randn(1, 32, 5, 180, 180, generator=gen).to(device).requires_grad_(True)
    head = MODELS.build(dict(type='CLAPRenderingHead', in_channels=32, ray_chunk_size=chunk)).to(device)
    return gen, volume, head.train()


def measure(device: torch.device, n: int, chunk: int) -> dict:
    """One forward + backward of ``n`` rays in a fresh process: seconds and peak memory above the set-up."""
    gen, volume, head = _setup(device, chunk)
    rays = make_rays(n, gen, device)
    kept: dict = {}
    with PeakMemory(device) as mem:
        sec = render_step(head, volume, rays, device, kept)
    return dict(rays=n, chunk=chunk, seconds=sec, peak_mib=mem.mib, kept_mib=sum(kept.values()) / 2 ** 20)


def _measure_in_subprocess(args, n: int, chunk: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), '--device', args.device, '--threads', str(args.threads),
           '--measure', str(n), str(chunk)]
    env = dict(os.environ)
    if args.device == 'cpu':
        # large blocks through mmap and one arena, so that freed memory leaves the resident set and the
        # peak resident set measures live memory rather than allocator fragmentation
        env.setdefault('MALLOC_MMAP_THRESHOLD_', '65536')
        env.setdefault('MALLOC_ARENA_MAX', '1')
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--rays', type=int, nargs='*', default=[1024, 4096, 16384, 65536])
    parser.add_argument('--chunk', type=int, default=4096, help='ray chunk size of the throughput table')
    parser.add_argument('--chunks', type=int, nargs='*', default=[1024, 4096, 16384],
                        help='chunk sizes of the memory-vs-chunk table (at --chunk-table-rays rays)')
    parser.add_argument('--chunk-table-rays', type=int, default=16384)
    parser.add_argument('--candidates', type=int, default=8192)
    parser.add_argument('--repeats', type=int, default=3, help='timed repeats of the curvature/rendering ratio')
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: leave as is)')
    parser.add_argument('--measure', type=int, nargs=2, metavar=('RAYS', 'CHUNK'),
                        help='internal: measure one configuration in this process and print JSON')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.measure:
        print(json.dumps(measure(device, *args.measure)))
        return
    print(f'device: {device} ({torch.cuda.get_device_name() if device.type == "cuda" else os.cpu_count()} '
          f'{"" if device.type == "cuda" else "cores, torch threads " + str(torch.get_num_threads())}), '
          'samples/ray 72+24, volume (1, 32, 5, 180, 180); each row measured in a fresh process', flush=True)
    if args.rays:
        print('\n| rays N | chunk | forward+backward s | rays/s | peak memory MiB | graph kept across chunks MiB |')
        print('|---:|---:|---:|---:|---:|---:|')
    for n in args.rays:
        r = _measure_in_subprocess(args, n, args.chunk)
        print(f'| {n} | {args.chunk} | {r["seconds"]:.2f} | {n / r["seconds"]:.0f} | {r["peak_mib"]:.0f} '
              f'| {r["kept_mib"]:.2f} |', flush=True)
    if args.chunks:
        print('\n| rays N | chunk | peak memory MiB | graph kept across chunks MiB |')
        print('|---:|---:|---:|---:|')
    for chunk in args.chunks:
        r = _measure_in_subprocess(args, args.chunk_table_rays, chunk)
        print(f'| {args.chunk_table_rays} | {chunk} | {r["peak_mib"]:.0f} | {r["kept_mib"]:.2f} |', flush=True)

    # curvature scoring vs one rendering step of N_L + 6 N_C rays, timed side by side in this process
    gen, volume, head = _setup(device, args.chunk)
    render_step(head, volume, make_rays(256, gen, device), device)  # warm-up
    pts = make_rays(args.candidates, gen, device)
    pts = pts.origins + pts.directions * pts.range[:, None]
    field = head.bind(volume.detach()[0])
    step_rays = make_rays(8192 + 6144, gen, device)
    render_s, curv = [], {'exact': [], 'finite_difference': []}
    for _ in range(args.repeats):
        render_s.append(render_step(head, volume, step_rays, device))
        for est in curv:
            sampler = CurvatureRaySelector(estimator=est, warmup_epochs=0)
            _sync(device)
            t = time.perf_counter()
            w = sampler.point_weights(pts, field.sdf, epoch=0)
            sampler.draw(w, 4096)
            _sync(device)
            curv[est].append(time.perf_counter() - t)
    r = min(render_s)
    print(f'\nrendering forward+backward of {8192 + 6144} rays: {r:.3f} s (min of {args.repeats})')
    for est, times in curv.items():
        c = min(times)
        print(f'curvature scoring ({est}) of {args.candidates} points + draw: {c:.3f} s = {100 * c / r:.2f} % '
              'of the rendering step')


if __name__ == '__main__':
    main()

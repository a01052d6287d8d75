"""Timers, peak-memory readings and synthetic rays shared by the benchmarks (torch only, no mmdet3d)."""
import resource
import statistics
import time
from typing import Callable, Dict

import torch
from torch import Tensor


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); a no-op on CPU."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int, warmup: bool = False) -> float:
    """Median wall-clock seconds of ``repeats`` calls of ``fn`` (after one untimed call when ``warmup``)."""
    if warmup:
        fn()
        sync(device)
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new CUDA peak-memory reading (no-op on CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mib(device: torch.device) -> float:
    """``torch.cuda.max_memory_allocated`` in MiB since :func:`reset_peak_memory`; NaN on CPU."""
    if device.type != 'cuda':
        return float('nan')
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def peak_rss_mib() -> float:
    """Peak resident set of this process in MiB (``ru_maxrss``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def lidar_like_rays(n: int, gen: torch.Generator, device: torch.device) -> Dict[str, Tensor]:
    """``n`` rays from 1.8 m above the origin, mostly horizontal, with range (5-45 m) and colour targets."""
    d = torch.randn(n, 3, generator=gen)
    d[:, 2] = d[:, 2] * 0.1 - 0.05
    d = torch.nn.functional.normalize(d, dim=-1)
    o = torch.zeros(n, 3)
    o[:, 2] = 1.8
    return dict(origins=o.to(device), directions=d.to(device),
                range=(5.0 + 40.0 * torch.rand(n, generator=gen)).to(device),
                rgb=torch.rand(n, 3, generator=gen).to(device))

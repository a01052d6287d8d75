"""Rendering step before / after a change, side by side in one run: time and peak memory of
``CLAPRenderingHead.loss`` forward + backward at the paper's ray budgets (8192 LiDAR + 6 x 1024 camera rays,
72 + 24 samples per ray, a 32 x 5 x 180 x 180 volume, chunks of 4096 with checkpointing).

Entry point: ``tools/benchmarks/bench_rendering_step.py --before-ref 5034d31 [--repeats 2] [--scale 1.0]``.

The package at ``--before-ref`` (a git revision of this repository) is exported to a temporary folder; each
measurement runs in a fresh process (peak RSS is per process), alternating before / after, with the same
volume, rays and seed. Prints the medians and the after / before ratios.

A measuring process runs this file as a script (``--child``) with the package of one revision first on
``PYTHONPATH``, so the file imports nothing from the package at module level: an older revision has no
``clap_plugin.benchmarks``.
"""
import argparse
import json
import os
import os.path as osp
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def child(scale: float, iters: int) -> dict:
    """One measurement with whichever ``clap_plugin`` is first on the path: seconds, peak RSS, losses."""
    import torch
    from mmdet3d.utils import register_all_modules
    register_all_modules()
    from mmdet3d.registry import MODELS

    import clap_plugin  # noqa: F401
    torch.manual_seed(0)
    pcr = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
    head = MODELS.build(dict(type='CLAPRenderingHead', in_channels=32, point_cloud_range=pcr, num_stratified=72,
                             num_importance=24, ray_chunk_size=4096))
    head.train()
    volume = (0.1 * torch.randn(1, 32, 5, 180, 180)).requires_grad_(True)
    n_l, n_c = int(8192 * scale), int(6144 * scale)
    g = torch.Generator().manual_seed(1)
    d_l = torch.randn(n_l, 3, generator=g)
    d_l[:, 2] = d_l[:, 2].abs() * -0.1
    d_c = torch.randn(n_c, 3, generator=g)
    d_c[:, 2] *= 0.2
    rays = dict(
        origins=torch.cat([torch.tensor([[0.0, 0.0, 1.8]]).expand(n_l, 3), torch.randn(n_c, 3, generator=g) * 0.5]),
        directions=torch.cat([d_l, d_c]),
        range=torch.cat([torch.rand(n_l, generator=g) * 40 + 2, torch.rand(n_c, generator=g) * 40 + 2]),
        range_mask=torch.cat([torch.ones(n_l, dtype=torch.bool), torch.rand(n_c, generator=g) < 0.3]),
        rgb=torch.rand(n_l + n_c, 3, generator=g),
        rgb_mask=torch.cat([torch.zeros(n_l, dtype=torch.bool), torch.ones(n_c, dtype=torch.bool)]))
    try:
        from clap_plugin.models.rendering.ray_batch import RayBatch
        rays = RayBatch.create(**rays)
    except ImportError:  # a revision from before RayBatch renders the dict itself
        pass
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        losses = head.loss(volume, [rays])
        sum(losses.values()).backward()
        times.append(time.perf_counter() - t0)
    return dict(seconds=min(times), peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                losses={k: float(v) for k, v in losses.items()}, package=osp.dirname(clap_plugin.__file__))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--before-ref', default=None, help='git revision of the "before" package')
    p.add_argument('--repeats', type=int, default=2, help='alternating before/after process pairs')
    p.add_argument('--iters', type=int, default=1, help='timed steps per process (the minimum is kept)')
    p.add_argument('--scale', type=float, default=1.0, help='fraction of the paper ray budgets')
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--out', help='JSON output path')
    return p.parse_args(argv)


def export_package(ref: str, folder: str) -> None:
    """``clap_plugin`` as it is at git revision ``ref``, written under ``folder``."""
    archive = subprocess.run(['git', '-C', ROOT, 'archive', ref, 'clap_plugin'], capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f'error: git archive {ref!r} failed: {archive.stderr.decode().strip()}')
    subprocess.run(['tar', '-x', '-C', folder], input=archive.stdout, check=True)


def measure(name: str, path: str, scale: float, iters: int) -> dict:
    """One measurement in a fresh process that imports ``clap_plugin`` from ``path``."""
    env = dict(os.environ, PYTHONPATH=path + os.pathsep + os.environ.get('PYTHONPATH', ''))
    out = subprocess.run([sys.executable, osp.abspath(__file__), '--child', '--scale', str(scale),
                          '--iters', str(iters)], env=env, cwd=path, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f'error: the {name} run failed:\n{out.stderr[-3000:]}')
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if not res['package'].startswith(osp.abspath(path)):
        raise SystemExit(f'error: the {name} run imported clap_plugin from {res["package"]}, not {path}')
    return res


def summarise(results: Dict[str, List[dict]]) -> dict:
    """Medians per revision and the after / before ratios."""
    summary = {}
    for name in ('before', 'after'):
        summary[name] = dict(seconds=statistics.median(r['seconds'] for r in results[name]),
                             peak_rss_mib=statistics.median(r['peak_rss_mib'] for r in results[name]))
    summary['time_ratio_after_over_before'] = summary['after']['seconds'] / summary['before']['seconds']
    summary['memory_ratio_after_over_before'] = summary['after']['peak_rss_mib'] / summary['before']['peak_rss_mib']
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.scale, args.iters)))
        return 0
    if not args.before_ref:
        raise SystemExit('error: --before-ref REV is required (the revision to compare against)')
    tmp = tempfile.mkdtemp(prefix='clap_before_')
    try:
        export_package(args.before_ref, tmp)
        results = dict(before=[], after=[])
        for rep in range(args.repeats):
            for name, path in (('before', tmp), ('after', ROOT)):
                res = measure(name, path, args.scale, args.iters)
                results[name].append(res)
                print(f'[{rep + 1}/{args.repeats}] {name:6s} {res["seconds"]:8.2f} s  {res["peak_rss_mib"]:8.0f} MiB',
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = summarise(results)
    summary.update(before_ref=args.before_ref, scale=args.scale, repeats=args.repeats, runs=results)
    print(json.dumps({k: v for k, v in summary.items() if k != 'runs'}, indent=2))
    if args.out:
        sys.path.insert(0, ROOT)
        from clap_plugin.utils.atomic_write import write_json_atomic
        write_json_atomic(args.out, summary)
    return 0


if __name__ == '__main__':
    sys.exit(main())

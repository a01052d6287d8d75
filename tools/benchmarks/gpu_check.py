"""GPU check of CLAP: the core components at the paper's budgets, then (where the full stack imports) a few
pre-training iterations. Runs on a bare CUDA machine with torch and mmengine only (no mmcv, spconv or mmdet3d).

    python tools/benchmarks/gpu_check.py                      # CUDA: core + full stack, --amp, batch 1 and 4
    python tools/benchmarks/gpu_check.py --device cpu --rays 512 --candidates 512 --cells 256   # a quick CPU run

Core (always): the rendering head of ``configs/clap_pretrain_nus.py`` (NeuS, 72 + 24 samples per ray) on a
random (1, 32, 5, 180, 180) volume, forward + backward of 8192 LiDAR + 6 x 1024 camera rays; curvature scoring
of 8192 candidate points with the config's CurvatureSampler and a draw; the swapped-prototype loss (512 x 128
prototypes) and the Gram regulariser on 2048 paired BEV cells. Reported: seconds per step (median), peak
memory (``torch.cuda.max_memory_allocated``), the curvature share of (rendering + curvature), and the
rendering step's achieved FLOP rate (``torch.utils.flop_counter``) against an fp32 matmul rate measured in the
same run. These modules are imported without the package ``__init__`` (which registers the BEVFusion
encoders and needs spconv and mmcv's ops); without mmdet3d a plain mmengine registry stands in for
``mmdet3d.registry``.

Full stack (CUDA, when mmdet3d, mmcv.ops and spconv import; ``--no-full-stack`` skips it): ``tools/train.py``
on ``configs/clap_pretrain_nus.py`` with ``--amp`` at batch 1 and then 4, a few iterations each on a synthetic
nuScenes set made here (or ``--data-root`` with info files): seconds per iteration and peak memory.

Prints a Markdown report; ``--out FILE`` also writes it (to a temporary name, then renamed).
"""
import argparse
import importlib
import importlib.util
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
import types
from typing import Dict, List, Optional

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRETRAIN_CONFIG = osp.join(REPO, 'configs', 'clap_pretrain_nus.py')


def _stub_package(name: str, path: str) -> None:
    """Register ``name`` as a package at ``path`` without running its ``__init__``."""
    if name in sys.modules:
        return
    mod = types.ModuleType(name)
    mod.__path__ = [path]
    mod.__package__ = name
    sys.modules[name] = mod


def load_core() -> Dict[str, object]:
    """The rendering head, curvature sampler and prototype losses, importable with torch and mmengine only.

    ``clap_plugin/__init__`` and ``clap_plugin/models/__init__`` import every module (the BEVFusion encoders
    need spconv, mmdet3d and mmcv's ops), so the three subpackages are imported on their own. Where
    ``mmdet3d.registry`` does not import, an mmengine registry stands in for it (the modules only register
    themselves there).
    """
    try:
        registry = importlib.import_module('mmdet3d.registry')
        models, task_utils = registry.MODELS, registry.TASK_UTILS
        stand_in = False
    except Exception:  # noqa: BLE001  (no mmdet3d, or no mmcv under it)
        from mmengine.registry import Registry
        models, task_utils = Registry('model'), Registry('task util')
        fake = types.ModuleType('mmdet3d')
        fake.__path__ = []
        reg = types.ModuleType('mmdet3d.registry')
        reg.MODELS, reg.TASK_UTILS = models, task_utils
        fake.registry = reg
        for key in [k for k in sys.modules if k == 'mmdet3d' or k.startswith('mmdet3d.')]:
            del sys.modules[key]
        sys.modules['mmdet3d'], sys.modules['mmdet3d.registry'] = fake, reg
        stand_in = True
    if 'clap_plugin' not in sys.modules:
        _stub_package('clap_plugin', osp.join(REPO, 'clap_plugin'))
    if 'clap_plugin.models' not in sys.modules:
        _stub_package('clap_plugin.models', osp.join(REPO, 'clap_plugin', 'models'))
    rendering = importlib.import_module('clap_plugin.models.rendering')
    sampling = importlib.import_module('clap_plugin.models.ray_selection')
    prototypes = importlib.import_module('clap_plugin.models.prototypes')
    return dict(MODELS=models, TASK_UTILS=task_utils, rendering=rendering, sampling=sampling,
                prototypes=prototypes, registry_stand_in=stand_in)


def pretrain_model_cfg(path: str = PRETRAIN_CONFIG) -> dict:
    """The ``model`` dict of the pre-training config, read without importing its custom modules."""
    from mmengine.config import Config
    return Config.fromfile(path, import_custom_modules=False).model.to_dict()


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()


def _reset_peak(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: torch.device) -> float:
    if device.type != 'cuda':
        return float('nan')
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def make_rays(n: int, gen: torch.Generator, device: torch.device) -> dict:
    """Rays from a LiDAR-like origin, mostly horizontal, with range and colour targets."""
    d = torch.randn(n, 3, generator=gen)
    d[:, 2] = d[:, 2] * 0.1 - 0.05
    d = torch.nn.functional.normalize(d, dim=-1)
    o = torch.zeros(n, 3)
    o[:, 2] = 1.8
    return dict(origins=o.to(device), directions=d.to(device),
                range=(5.0 + 40.0 * torch.rand(n, generator=gen)).to(device),
                rgb=torch.rand(n, 3, generator=gen).to(device))


def matmul_tflops(device: torch.device, n: int, repeats: int) -> float:
    """Measured fp32 matmul rate (TF32 off) in TFLOP/s."""
    old = torch.backends.cuda.matmul.allow_tf32 if device.type == 'cuda' else None
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        a @ b
        _sync(device)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            _sync(device)
            times.append(time.perf_counter() - t)
    finally:
        if old is not None:
            torch.backends.cuda.matmul.allow_tf32 = old
    return 2 * n**3 / min(times) / 1e12


def _median_time(fn, device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def core_check(device: torch.device, rays: int, candidates: int, cells: int, repeats: int,
               matmul_n: int) -> dict:
    core = load_core()
    MODELS, TASK_UTILS = core['MODELS'], core['TASK_UTILS']
    model = pretrain_model_cfg()
    gen = torch.Generator().manual_seed(0)
    out: dict = dict(device=str(device), registry_stand_in=core['registry_stand_in'],
                     torch=torch.__version__, cuda=torch.version.cuda,
                     gpu=torch.cuda.get_device_name(device) if device.type == 'cuda' else None)

    head_cfg = dict(model['rendering_head'])
    channels = head_cfg['in_channels']
    volume = torch.randn(1, channels, model['volume_lifter'].get('num_z', 5), 180, 180,
                         generator=gen).to(device).requires_grad_(True)
    head = MODELS.build(head_cfg).to(device).train()
    step_rays = make_rays(rays, gen, device)
    out['rays'] = rays
    out['samples_per_ray'] = head_cfg.get('num_stratified', 0) + head_cfg.get('num_importance', 0)

    def render():
        volume.grad = None
        head.zero_grad(set_to_none=True)
        losses = head.loss(volume, [step_rays])
        sum(losses.values()).backward()

    render()  # warm-up (allocator, kernels)
    _reset_peak(device)
    out['render_s'] = _median_time(render, device, repeats)
    out['render_peak_mib'] = _peak_mib(device)
    out['render_rays_per_s'] = rays / out['render_s']
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        render()
    out['render_tflop'] = counter.get_total_flops() / 1e12
    out['render_tflops_achieved'] = out['render_tflop'] / out['render_s']
    out['matmul_fp32_tflops'] = matmul_tflops(device, matmul_n, repeats)
    out['render_vs_matmul'] = out['render_tflops_achieved'] / out['matmul_fp32_tflops']

    sampler_cfg = dict(model['ray_selector'])
    sampler_cfg['warmup_epochs'] = 0
    sampler_cfg['num_candidates'] = candidates
    sampler = TASK_UTILS.build(sampler_cfg)
    pts = make_rays(candidates, gen, device)
    pts = pts['origins'] + pts['directions'] * pts['range'][:, None]
    field = head.bind(volume.detach()[0])

    def curvature():
        w = sampler.point_weights(pts, field.sdf, epoch=0)
        sampler.draw(w, min(candidates // 2, sampler_cfg.get('num_lidar_rays', candidates // 2)))

    curvature()
    _reset_peak(device)
    out['curvature_candidates'] = candidates
    out['curvature_s'] = _median_time(curvature, device, repeats)
    out['curvature_peak_mib'] = _peak_mib(device)
    out['curvature_share'] = out['curvature_s'] / (out['curvature_s'] + out['render_s'])

    proto_cfg = dict(model['prototype_loss'])
    proto = MODELS.build(proto_cfg).to(device).train()
    gram = MODELS.build(dict(model['gram_regularizer'])).to(device) if model.get('gram_regularizer') else None
    lidar = torch.randn(cells, proto_cfg.get('lidar_channels', 256), generator=gen).to(device).requires_grad_(True)
    camera = torch.randn(cells, proto_cfg.get('camera_channels', 80), generator=gen).to(device).requires_grad_(True)

    def prototypes():
        proto.zero_grad(set_to_none=True)
        losses = proto(lidar, camera)
        total = sum(losses.values())
        if gram is not None:
            total = total + gram(proto.prototypes)
        total.backward()

    prototypes()
    _reset_peak(device)
    out['proto_cells'] = cells
    out['proto_s'] = _median_time(prototypes, device, repeats)
    out['proto_peak_mib'] = _peak_mib(device)
    return out


def _full_stack_importable() -> Optional[str]:
    for name in ('mmdet3d', 'mmcv.ops', 'spconv.pytorch'):
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001
            return f'{name} does not import ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ""})'
    return None


_DRIVER = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
import torch
from clap_plugin.apis import train
from mmengine.hooks import Hook
import os
times = []
limit = int(os.environ.get('GPU_CHECK_ITERS', '0'))
class _Stop(Exception):
    pass
class _Timer(Hook):
    priority = 'LOWEST'
    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if torch.cuda.is_available(): torch.cuda.synchronize()
        self.t = time.perf_counter()
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if torch.cuda.is_available(): torch.cuda.synchronize()
        times.append(time.perf_counter() - self.t)
        if limit and len(times) >= limit:
            raise _Stop()
from mmengine.runner import Runner
_orig = Runner.train
def _train(self):
    self.register_hook(_Timer())
    return _orig(self)
Runner.train = _train
try:
    train.main(sys.argv[2:])
except _Stop:
    pass
peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float('nan')
print('GPU_CHECK ' + json.dumps(dict(iter_s=times, peak_mib=peak)))
'''


def _make_data(root: str, samples: int) -> None:
    """A synthetic nuScenes set of one training scene of ``samples`` keyframes, with info files."""
    sys.path.insert(0, REPO)
    from clap_plugin.datasets.nuscenes_converter import create_nuscenes_infos
    from clap_plugin.synthetic import GeneratorConfig, generate
    generate(GeneratorConfig(root=root, version='v1.0-mini', num_scenes=1, samples_per_scene=samples, seed=0,
                             sweeps=2), progress=False)
    create_nuscenes_infos(root, root, version='v1.0-mini', max_sweeps=10)


def full_stack_check(device: torch.device, config: str, batches: List[int], iters: int, amp: bool,
                     data_root: Optional[str], timeout: int) -> List[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix='clap_gpu_check_') as tmp:
        if data_root is None:
            data_root = osp.join(tmp, 'nuscenes')
            t = time.perf_counter()
            _make_data(data_root, max(batches) * iters)
            print(f'[gpu_check] synthetic set made in {time.perf_counter() - t:.0f} s', file=sys.stderr, flush=True)
        for batch in batches:
            argv = [config, '--work-dir', osp.join(tmp, f'work_b{batch}'), '--cfg-options',
                    f'data_root={data_root.rstrip("/")}/', 'nus_version=v1.0-mini', 'train_cfg.max_epochs=1',
                    f'train_dataloader.batch_size={batch}', 'train_dataloader.num_workers=2',
                    'train_dataloader.persistent_workers=False', 'default_hooks.checkpoint.interval=1000']
            if amp:
                argv.append('--amp')
            env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''),
                       GPU_CHECK_ITERS=str(iters))
            if device.type == 'cpu':
                env['CUDA_VISIBLE_DEVICES'] = ''
            proc = subprocess.run([sys.executable, '-c', _DRIVER, REPO] + argv, capture_output=True, text=True,
                                  env=env, timeout=timeout)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith('GPU_CHECK ')]
            if proc.returncode != 0 or not line:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['']
                rows.append(dict(batch=batch, error=f'exit {proc.returncode}: {tail[0][:300]}'))
                continue
            res = json.loads(line[-1][len('GPU_CHECK '):])
            steady = res['iter_s'][1:] or res['iter_s']  # the first iteration includes start-up
            rows.append(dict(batch=batch, iters=len(res['iter_s']), iter_s=statistics.median(steady),
                             peak_mib=res['peak_mib']))
    return rows


def _mib(value: float) -> str:
    return 'n/a (CPU)' if value != value else f'{value:.0f}'


def report(core: dict, full: Optional[List[dict]], full_note: Optional[str]) -> str:
    lines = [f'# GPU check ({core["device"]}{", " + core["gpu"] if core.get("gpu") else ""}; torch {core["torch"]}, '
             f'CUDA {core["cuda"]})', '',
             f'Registry: {"mmengine stand-in (no mmdet3d)" if core["registry_stand_in"] else "mmdet3d"}.', '',
             '| component | size | s / step | peak MiB |', '|---|---|---:|---:|',
             f'| rendering forward + backward | {core["rays"]} rays x {core["samples_per_ray"]} samples | '
             f'{core["render_s"]:.4f} | {_mib(core["render_peak_mib"])} |',
             f'| curvature scoring + draw | {core["curvature_candidates"]} candidates | {core["curvature_s"]:.4f} | '
             f'{_mib(core["curvature_peak_mib"])} |',
             f'| prototype losses + Gram, forward + backward | {core["proto_cells"]} cells | {core["proto_s"]:.4f} | '
             f'{_mib(core["proto_peak_mib"])} |', '',
             f'- curvature share of (rendering + curvature): {100 * core["curvature_share"]:.2f} %',
             f'- rendering throughput: {core["render_rays_per_s"]:.0f} rays/s; {core["render_tflop"]:.3f} TFLOP per '
             f'step = {core["render_tflops_achieved"]:.3f} TFLOP/s achieved vs {core["matmul_fp32_tflops"]:.2f} '
             f'TFLOP/s fp32 matmul measured here ({100 * core["render_vs_matmul"]:.1f} %)']
    lines.append('')
    if full is None:
        lines.append(f'Full stack: skipped ({full_note}).')
    else:
        lines += ['| full stack | batch | iterations | s / iteration | peak MiB |', '|---|---:|---:|---:|---:|']
        for r in full:
            if 'error' in r:
                lines.append(f'| {full_note} | {r["batch"]} | - | failed: {r["error"]} | - |')
            else:
                lines.append(f'| {full_note} | {r["batch"]} | {r["iters"]} | {r["iter_s"]:.3f} '
                             f'| {_mib(r["peak_mib"])} |')
    return '\n'.join(lines) + '\n'


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', choices=['cuda', 'cpu'], default='cuda')
    p.add_argument('--rays', type=int, default=8192 + 6 * 1024,
                   help='rays per rendering step (paper: 8192 + 6 x 1024)')
    p.add_argument('--candidates', type=int, default=8192, help='curvature candidates (paper config: 8192)')
    p.add_argument('--cells', type=int, default=2048, help='paired BEV cells of the prototype loss')
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--matmul-n', type=int, default=8192)
    p.add_argument('--no-full-stack', action='store_true')
    p.add_argument('--config', default=PRETRAIN_CONFIG, help='pre-training config of the full-stack part')
    p.add_argument('--batches', type=int, nargs='+', default=[1, 4])
    p.add_argument('--iters', type=int, default=4, help='iterations per batch size (full stack)')
    p.add_argument('--no-amp', action='store_true', help='full stack without --amp (--amp needs CUDA)')
    p.add_argument('--data-root', help='nuScenes root with info files (default: a synthetic set made here)')
    p.add_argument('--timeout', type=int, default=240, help='seconds per full-stack run')
    p.add_argument('--out', help='also write the report here')
    args = p.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('error: --device cuda but torch sees no GPU (torch.version.cuda = '
              f'{torch.version.cuda}); use --device cpu for a CPU run', file=sys.stderr)
        return 2
    device = torch.device(args.device)
    t0 = time.perf_counter()
    core = core_check(device, args.rays, args.candidates, args.cells, args.repeats,
                      args.matmul_n if device.type == 'cuda' else min(args.matmul_n, 1024))
    print(f'[gpu_check] core done in {time.perf_counter() - t0:.0f} s', file=sys.stderr, flush=True)
    full, note = None, None
    amp = not args.no_amp
    if args.no_full_stack:
        note = '--no-full-stack'
    elif amp and device.type != 'cuda':
        note = '--amp needs CUDA; pass --no-amp for a CPU run'
    else:
        missing = _full_stack_importable()
        if missing:
            note = missing
        else:
            note = f'{osp.relpath(args.config, REPO)}{" --amp" if amp else ""}'
            full = full_stack_check(device, args.config, args.batches, args.iters, amp, args.data_root,
                                    args.timeout)
    text = report(core, full, note)
    print(text)
    print(f'[gpu_check] total {time.perf_counter() - t0:.0f} s', file=sys.stderr)
    if args.out:
        folder = osp.dirname(osp.abspath(args.out))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.gpu_check.', suffix='.tmp')
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.replace(tmp, args.out)
    failed = full is not None and any('error' in r for r in full)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

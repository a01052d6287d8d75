"""GPU check of CLAP: the core components at the paper's budgets, then (where the full stack imports) a few
pre-training iterations. Runs on a bare CUDA machine with torch and mmengine only (no mmcv, spconv or mmdet3d).

    python tools/benchmarks/gpu_check.py                      # CUDA: core + full stack, --amp, batch 1 and 4
    python tools/benchmarks/gpu_check.py --device cpu --rays 512 --candidates 512 --cells 256   # a quick CPU run

Core (always): the rendering head of ``configs/clap_pretrain_nus.py`` (NeuS, 72 + 24 samples per ray) on a
random (1, 32, 5, 180, 180) volume, forward + backward of 8192 LiDAR + 6 x 1024 camera rays; curvature scoring
of 8192 candidate points with the config's ray selector and a draw; the swapped-prototype loss (512 x 128
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
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
import types
from typing import Callable, Dict, List, Optional

import torch

from clap_plugin.benchmarks.timing import lidar_like_rays, median_seconds, peak_memory_mib, reset_peak_memory, sync
from clap_plugin.utils.atomic_write import write_text_atomic

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


def _registries():
    """mmdet3d's MODELS and TASK_UTILS, or mmengine stand-ins registered as ``mmdet3d.registry`` (and whether
    they are stand-ins) where mmdet3d does not import."""
    try:
        registry = importlib.import_module('mmdet3d.registry')
        return registry.MODELS, registry.TASK_UTILS, False
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
        return models, task_utils, True


def load_core() -> Dict[str, object]:
    """The rendering head, ray selector and prototype losses, importable with torch and mmengine only.

    ``clap_plugin/__init__`` and ``clap_plugin/models/__init__`` import every module (the BEVFusion encoders
    need spconv, mmdet3d and mmcv's ops), so the three subpackages are imported on their own. Where
    ``mmdet3d.registry`` does not import, an mmengine registry stands in for it (the modules only register
    themselves there).
    """
    models, task_utils, stand_in = _registries()
    _stub_package('clap_plugin', osp.join(REPO, 'clap_plugin'))
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


def matmul_tflops(device: torch.device, n: int, repeats: int) -> float:
    """Measured fp32 matmul rate (TF32 off) in TFLOP/s."""
    old = torch.backends.cuda.matmul.allow_tf32 if device.type == 'cuda' else None
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        a @ b
        sync(device)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            sync(device)
            times.append(time.perf_counter() - t)
    finally:
        if old is not None:
            torch.backends.cuda.matmul.allow_tf32 = old
    return 2 * n**3 / min(times) / 1e12


def _timed(fn: Callable[[], None], device: torch.device, repeats: int) -> Dict[str, float]:
    """One warm-up call (allocator, kernels), then the median seconds and the peak memory of ``fn``."""
    fn()
    reset_peak_memory(device)
    seconds = median_seconds(fn, device, repeats)
    return dict(s=seconds, peak_mib=peak_memory_mib(device))


def _rendering(head, volume: torch.Tensor, rays: int, gen: torch.Generator, device: torch.device,
               repeats: int) -> dict:
    """Forward + backward of the rendering loss on ``rays`` rays: time, memory, FLOP rate."""
    from clap_plugin.models.rendering.ray_batch import RayBatch
    step_rays = RayBatch.create(**lidar_like_rays(rays, gen, device))

    def render():
        volume.grad = None
        head.zero_grad(set_to_none=True)
        losses = head.loss(volume, [step_rays])
        sum(losses.values()).backward()

    t = _timed(render, device, repeats)
    out = dict(rays=rays, render_s=t['s'], render_peak_mib=t['peak_mib'], render_rays_per_s=rays / t['s'])
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        render()
    out['render_tflop'] = counter.get_total_flops() / 1e12
    out['render_tflops_achieved'] = out['render_tflop'] / out['render_s']
    return out


def _curvature(task_utils, selector_cfg: dict, head, volume: torch.Tensor, candidates: int, gen: torch.Generator,
               device: torch.device, repeats: int) -> dict:
    """Curvature scoring of ``candidates`` points on the head's field, then a draw."""
    selector_cfg = dict(selector_cfg, warmup_epochs=0, num_candidates=candidates)
    selector = task_utils.build(selector_cfg)
    pts = lidar_like_rays(candidates, gen, device)
    pts = pts['origins'] + pts['directions'] * pts['range'][:, None]
    field = head.bind(volume.detach()[0])

    def curvature():
        w = selector.point_weights(pts, field.sdf, epoch=0)
        selector.draw(w, min(candidates // 2, selector_cfg.get('num_lidar_rays', candidates // 2)))

    t = _timed(curvature, device, repeats)
    return dict(curvature_candidates=candidates, curvature_s=t['s'], curvature_peak_mib=t['peak_mib'])


def _prototypes(models, model: dict, cells: int, gen: torch.Generator, device: torch.device, repeats: int) -> dict:
    """Swapped-prototype losses and the Gram regulariser on ``cells`` paired BEV cells, forward + backward."""
    proto_cfg = dict(model['prototype_loss'])
    proto = models.build(proto_cfg).to(device).train()
    gram = models.build(dict(model['gram_regularizer'])).to(device) if model.get('gram_regularizer') else None
    lidar = torch.randn(cells, proto_cfg.get('lidar_channels', 256), generator=gen).to(device).requires_grad_(True)
    camera = torch.randn(cells, proto_cfg.get('camera_channels', 80), generator=gen).to(device).requires_grad_(True)

    def prototypes():
        proto.zero_grad(set_to_none=True)
        losses = proto(lidar, camera)
        total = sum(losses.values())
        if gram is not None:
            total = total + gram(proto.prototypes)
        total.backward()

    t = _timed(prototypes, device, repeats)
    return dict(proto_cells=cells, proto_s=t['s'], proto_peak_mib=t['peak_mib'])


def core_check(device: torch.device, rays: int, candidates: int, cells: int, repeats: int,
               matmul_n: int) -> dict:
    """The rendering, curvature and prototype figures of the pre-training config's modules on ``device``."""
    core = load_core()
    model = pretrain_model_cfg()
    gen = torch.Generator().manual_seed(0)
    out: dict = dict(device=str(device), registry_stand_in=core['registry_stand_in'],
                     torch=torch.__version__, cuda=torch.version.cuda,
                     gpu=torch.cuda.get_device_name(device) if device.type == 'cuda' else None)
    head_cfg = dict(model['rendering_head'])
    volume = torch.randn(1, head_cfg['in_channels'], model['volume_lifter'].get('num_z', 5), 180, 180,
                         generator=gen).to(device).requires_grad_(True)
    head = core['MODELS'].build(head_cfg).to(device).train()
    out['samples_per_ray'] = head_cfg.get('num_stratified', 0) + head_cfg.get('num_importance', 0)
    out.update(_rendering(head, volume, rays, gen, device, repeats))
    out['matmul_fp32_tflops'] = matmul_tflops(device, matmul_n, repeats)
    out['render_vs_matmul'] = out['render_tflops_achieved'] / out['matmul_fp32_tflops']
    out.update(_curvature(core['TASK_UTILS'], model['ray_selector'], head, volume, candidates, gen, device, repeats))
    out['curvature_share'] = out['curvature_s'] / (out['curvature_s'] + out['render_s'])
    out.update(_prototypes(core['MODELS'], model, cells, gen, device, repeats))
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


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
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
    return p.parse_args(argv)


def _full_stack(args: argparse.Namespace, device: torch.device):
    """The full-stack rows (None where it is skipped) and the note that names the run or why it was skipped."""
    amp = not args.no_amp
    if args.no_full_stack:
        return None, '--no-full-stack'
    if amp and device.type != 'cuda':
        return None, '--amp needs CUDA; pass --no-amp for a CPU run'
    missing = _full_stack_importable()
    if missing:
        return None, missing
    note = f'{osp.relpath(args.config, REPO)}{" --amp" if amp else ""}'
    return full_stack_check(device, args.config, args.batches, args.iters, amp, args.data_root,
                            args.timeout), note


def main(argv: Optional[List[str]] = None) -> int:
    """Run the check and print the report; 2 when CUDA is asked for and absent, 1 when a full-stack run fails."""
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('error: --device cuda but torch sees no GPU (torch.version.cuda = '
              f'{torch.version.cuda}); use --device cpu for a CPU run', file=sys.stderr)
        return 2
    device = torch.device(args.device)
    t0 = time.perf_counter()
    core = core_check(device, args.rays, args.candidates, args.cells, args.repeats,
                      args.matmul_n if device.type == 'cuda' else min(args.matmul_n, 1024))
    print(f'[gpu_check] core done in {time.perf_counter() - t0:.0f} s', file=sys.stderr, flush=True)
    full, note = _full_stack(args, device)
    text = report(core, full, note)
    print(text)
    print(f'[gpu_check] total {time.perf_counter() - t0:.0f} s', file=sys.stderr)
    if args.out:
        write_text_atomic(args.out, text)
    failed = full is not None and any('error' in r for r in full)
    return 1 if failed else 0

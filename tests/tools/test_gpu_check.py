"""tools/benchmarks/gpu_check.py: the core CLAP modules (rendering head with curvature scoring, prototype
losses) import and run without compiled mmcv ops, spconv or mmdet3d; --device cpu at small sizes; the
full-stack part on the CPU-tiny pre-training config."""
import os
import os.path as osp
import subprocess
import sys

import pytest

pytestmark = pytest.mark.usefixtures('mmdet3d_default_scope')  # build in the mmdet3d registry scope


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'benchmarks', 'gpu_check.py')
SMALL = ['--device', 'cpu', '--rays', '192', '--candidates', '128', '--cells', '64', '--repeats', '1',
         '--matmul-n', '256']

# what a bare CUDA machine lacks: compiled mmcv ops, spconv, and mmdet3d / mmdet / mmcv altogether
_BARE = r'''
import runpy, sys
for name in ('mmcv', 'mmcv.ops', 'spconv', 'spconv.pytorch', 'mmdet', 'mmdet3d', 'cumm'):
    sys.modules[name] = None  # any import of these raises ImportError
sys.argv = [sys.argv[1]] + sys.argv[2:]
try:
    runpy.run_path(sys.argv[0], run_name='__main__')
except SystemExit as exc:
    # real modules only (the script's mmengine stand-in for mmdet3d.registry has no file)
    loaded = sorted(k for k, v in sys.modules.items() if v is not None and getattr(v, '__file__', None)
                    and k.split('.')[0] in ('mmcv', 'spconv', 'mmdet', 'mmdet3d', 'cumm'))
    core = sorted(k for k in sys.modules if k.startswith('clap_plugin.models.'))
    print('LOADED', loaded, 'CORE', core)
    raise
'''


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    return env


def test_core_modules_run_without_mmcv_ops_spconv_or_mmdet3d(tmp_path):
    out = tmp_path / 'report.md'
    proc = subprocess.run([sys.executable, '-c', _BARE, SCRIPT] + SMALL + ['--out', str(out)],
                          capture_output=True, text=True, cwd=REPO, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LOADED [] CORE" in proc.stdout  # none of the blocked packages got in
    for mod in ('clap_plugin.models.rendering', 'clap_plugin.models.ray_selection', 'clap_plugin.models.prototypes'):
        assert f"'{mod}'" in proc.stdout
    assert "'clap_plugin.models.bevfusion'" not in proc.stdout
    text = out.read_text()
    assert 'mmengine stand-in (no mmdet3d)' in text
    assert '| rendering forward + backward | 192 rays x 96 samples |' in text
    assert '| curvature scoring + draw | 128 candidates |' in text
    assert 'curvature share of (rendering + curvature):' in text and 'TFLOP/s fp32 matmul measured here' in text
    assert 'Full stack: skipped (--amp needs CUDA' in text


def test_cuda_request_without_gpu_says_so():
    import torch
    if torch.cuda.is_available():
        return
    proc = subprocess.run([sys.executable, SCRIPT, '--device', 'cuda'], capture_output=True, text=True, cwd=REPO,
                          env=_env(), timeout=120)
    assert proc.returncode == 2 and 'torch sees no GPU' in proc.stderr


def test_full_stack_part_on_the_cpu_tiny_config(synthetic_nus):
    proc = subprocess.run([sys.executable, SCRIPT] + SMALL + [
        '--no-amp', '--config', osp.join(REPO, 'configs', 'clap_pretrain_nus_cpu-tiny.py'), '--batches', '1',
        '--iters', '2', '--data-root', synthetic_nus], capture_output=True, text=True, cwd=REPO, env=_env(),
        timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    row = next(ln for ln in proc.stdout.splitlines() if ln.startswith('| configs/clap_pretrain_nus_cpu-tiny.py'))
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[1:3] == ['1', '2'] and float(cells[3]) > 0

"""tools/install_plan.py: the CPU / CUDA decisions of tools/install.sh, with torch.version.cuda, the GPU
visibility and CLAP_DEVICE faked."""
import importlib.util
import os.path as osp
import shlex
import subprocess
import sys

import pytest

from tests.helpers.paths import REPO


def _load_install_plan():
    """tools/install_plan.py runs before the package is installed (install.sh): it loads
    clap_plugin/utils/install_plan.py by path, without the package's __init__; load it the same way."""
    spec = importlib.util.spec_from_file_location('install_plan_tool', osp.join(REPO, 'tools', 'install_plan.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.load()


ip = _load_install_plan()


def facts(cuda=None, gpu=False, device=None, py=(3, 11), torch='2.4.1', caps=(), **env):
    e = dict(env)
    if device is not None:
        e['CLAP_DEVICE'] = device
    return ip.Facts(torch_version=torch + ('+cu' + cuda.replace('.', '') if cuda else '+cpu'), torch_cuda=cuda,
                    gpu_visible=gpu, capabilities=caps, python=py, nproc=16, mem_gb=64.0, env=e)


@pytest.mark.parametrize('cuda, package', [('11.8', 'spconv-cu118==2.3.8'), ('12.1', 'spconv-cu121==2.3.8'),
                                           ('12.4', 'spconv-cu124==2.3.8'), ('12.6', 'spconv-cu126==2.3.8'),
                                           ('12.8', 'spconv-cu126==2.3.8'), ('11.7', 'spconv-cu114==2.3.8')])
def test_spconv_package_follows_torch_cuda(cuda, package):
    plan = ip.decide(facts(cuda=cuda, gpu=True))
    assert plan.device == 'cuda' and plan.spconv == package
    assert 'cu120' not in plan.spconv  # stops at 2.3.6: never the pinned version


def test_cuda_without_spconv_build_is_an_error():
    with pytest.raises(ip.PlanError, match='CUDA 13.0'):
        ip.decide(facts(cuda='13.0', gpu=True))


def test_gpu_plan_builds_mmcv_with_cuda_and_never_from_pip_cache():
    plan = ip.decide(facts(cuda='12.4', gpu=True, torch='2.5.1', caps=[(9, 0), (8, 0), (9, 0)]))
    env = plan.build_env
    assert env['FORCE_CUDA'] == '1' and env['MMCV_WITH_OPS'] == '1'
    assert env['TORCH_CUDA_ARCH_LIST'] == '8.0;9.0+PTX'  # the visible GPUs
    assert env['MAX_JOBS'] == '16'
    assert plan.pip_cache is False  # --no-cache-dir: pip's cache may hold a CPU-built mmcv
    cpu = ip.decide(facts(cuda=None, gpu=False, torch='2.5.1'))
    assert cpu.mmcv_tag != plan.mmcv_tag and cpu.mmcv_tag.startswith('cpu')  # distinct local wheel folders
    assert plan.mmcv_find_links is None  # no OpenMMLab wheel for torch 2.5
    # user settings win; the default arch list covers the common GPUs of this CUDA version
    plan = ip.decide(facts(cuda='12.1', gpu=True, TORCH_CUDA_ARCH_LIST='8.6', MAX_JOBS='3'))
    assert plan.build_env['TORCH_CUDA_ARCH_LIST'] == '8.6' and plan.build_env['MAX_JOBS'] == '3'
    assert ip.default_arch_list('11.8', ()) == '7.0;7.5;8.0;8.6;8.9;9.0+PTX'
    assert ip.default_arch_list('12.8', ()).endswith('12.0+PTX')


def test_prebuilt_mmcv_where_openmmlab_publishes_it():
    plan = ip.decide(facts(cuda='12.1', gpu=True, torch='2.1.2'))
    assert plan.mmcv_find_links == 'https://download.openmmlab.com/mmcv/dist/cu121/torch2.1/index.html'
    assert ip.decide(facts(cuda='12.1', gpu=True, torch='2.1.2', py=(3, 12))).mmcv_find_links is None


def test_no_gpu_means_cpu_and_clap_device_overrides():
    assert ip.decide(facts(cuda=None, gpu=False)).device == 'cpu'
    plan = ip.decide(facts(cuda='12.1', gpu=False))  # CUDA torch on a machine without a GPU
    assert plan.device == 'cpu' and plan.spconv == 'spconv==2.3.8' and 'CLAP_DEVICE=cuda' in plan.notes[0]
    plan = ip.decide(facts(cuda='12.1', gpu=False, device='cuda'))  # login node installing for GPU jobs
    assert plan.device == 'cuda' and plan.spconv == 'spconv-cu121==2.3.8' and plan.build_env['FORCE_CUDA'] == '1'
    plan = ip.decide(facts(cuda='12.1', gpu=True, device='cpu'))
    assert plan.device == 'cpu' and 'FORCE_CUDA' not in plan.build_env and plan.notes


def test_silent_cpu_only_on_a_gpu_machine_is_refused():
    with pytest.raises(ip.PlanError, match='GPU is visible, but torch .* CPU build'):
        ip.decide(facts(cuda=None, gpu=True))
    with pytest.raises(ip.PlanError, match='CLAP_DEVICE=cuda, but torch'):
        ip.decide(facts(cuda=None, gpu=False, device='cuda'))
    with pytest.raises(ip.PlanError, match="CLAP_DEVICE='gpu'"):
        ip.decide(facts(device='gpu'))


@pytest.mark.parametrize('py, ok', [((3, 9), False), ((3, 10), True), ((3, 12), True), ((3, 13), False)])
def test_supported_python(py, ok):
    if ok:
        assert ip.decide(facts(py=py)).device == 'cpu'
    else:
        with pytest.raises(ip.PlanError, match='Python 3.10 to 3.12'):
            ip.decide(facts(py=py))


def test_shell_assignments_round_trip():
    plan = ip.decide(facts(cuda='12.4', gpu=True))
    script = plan.shell() + '\nprintf "%s|%s|%s" "$CLAP_PLAN_DEVICE" "$CLAP_PLAN_SPCONV" "$CLAP_PLAN_BUILD_ENV"'
    out = subprocess.run(['bash', '-c', script], capture_output=True, text=True, check=True).stdout
    device, spconv, env = out.split('|')
    assert (device, spconv) == ('cuda', 'spconv-cu124==2.3.8')
    assert dict(kv.split('=', 1) for kv in shlex.split(env))['TORCH_CUDA_ARCH_LIST'] == plan.build_env[
        'TORCH_CUDA_ARCH_LIST']


def test_stale_spconv_builds_are_removed():
    assert ip.stale_spconv('spconv-cu121==2.3.8', ['spconv', 'spconv-cu121']) == ['spconv']
    assert ip.stale_spconv('spconv==2.3.8', ['spconv-cu118']) == ['spconv-cu118']
    assert ip.stale_spconv('spconv==2.3.8', ['spconv']) == []


def test_check_on_this_cpu_install():
    """The final check of install.sh: passes for cpu here; asking for cuda fails loudly (CPU-only builds)."""
    problems = ip.check('cpu', gpu_visible=False)
    assert problems == []
    problems = ip.check('cuda', gpu_visible=False)
    assert any('mmcv' in p and 'without CUDA ops' in p for p in problems), problems
    assert any('spconv is the CPU-only build' in p for p in problems), problems


_FAKE_TORCH = r'''
import sys, types
torch = types.ModuleType('torch')
torch.__version__ = sys.argv[1]
torch.version = types.SimpleNamespace(cuda=None if sys.argv[2] == 'none' else sys.argv[2])
gpus = int(sys.argv[3])
torch.cuda = types.SimpleNamespace(is_available=lambda: gpus > 0, device_count=lambda: gpus,
                                   get_device_capability=lambda i: (9, 0))
sys.modules['torch'] = torch
sys.path.insert(0, sys.argv[4])
import install_plan  # tools/install_plan.py, the entry point install.sh runs
sys.exit(install_plan.load().main(['plan']))
'''


@pytest.mark.parametrize('torch_version, cuda, gpus, env, expect', [
    ('2.4.1+cu121', '12.1', 1, {}, dict(DEVICE='cuda', SPCONV='spconv-cu121==2.3.8', PIP_CACHE='0')),
    ('2.4.1+cu121', '12.1', 0, {}, dict(DEVICE='cpu', SPCONV='spconv==2.3.8', PIP_CACHE='1')),
    ('2.4.1+cu121', '12.1', 0, {'CLAP_DEVICE': 'cuda'}, dict(DEVICE='cuda', SPCONV='spconv-cu121==2.3.8')),
    ('2.6.0+cu126', '12.6', 2, {'CLAP_DEVICE': 'cpu'}, dict(DEVICE='cpu', SPCONV='spconv==2.3.8')),
])
def test_plan_command_reads_torch_and_gpu_visibility(tmp_path, torch_version, cuda, gpus, env, expect):
    """``install_plan.py plan`` as install.sh runs it, with torch faked (no nvidia-smi on PATH)."""
    import os
    run_env = {k: v for k, v in os.environ.items() if k != 'CLAP_DEVICE'}
    run_env.update(PATH=str(tmp_path), **env)  # an empty PATH folder: no nvidia-smi
    proc = subprocess.run([sys.executable, '-c', _FAKE_TORCH, torch_version, cuda, str(gpus),
                           osp.join(REPO, 'tools')], capture_output=True, text=True, env=run_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    values = {}
    for line in proc.stdout.splitlines():
        key, value = line.split('=', 1)
        values[key[len('CLAP_PLAN_'):]] = shlex.split(value)[0] if value.strip("'") else ''
    for k, v in expect.items():
        assert values[k] == v, (k, values)
    if expect['DEVICE'] == 'cuda' and gpus:
        assert 'TORCH_CUDA_ARCH_LIST=9.0+PTX' in values['BUILD_ENV'] and 'FORCE_CUDA=1' in values['BUILD_ENV']


def test_plan_command_refuses_cpu_torch_on_a_gpu_machine(tmp_path):
    """A GPU visible through nvidia-smi with a CPU build of torch: the install stops with a message."""
    import os
    smi = tmp_path / 'nvidia-smi'
    smi.write_text('#!/bin/sh\necho "GPU 0: NVIDIA H200 (UUID: GPU-0)"\n')
    smi.chmod(0o755)
    env = dict(os.environ, PATH=str(tmp_path) + os.pathsep + os.environ.get('PATH', ''))
    env.pop('CLAP_DEVICE', None)
    proc = subprocess.run([sys.executable, '-c', _FAKE_TORCH, '2.4.1+cpu', 'none', '0', osp.join(REPO, 'tools')],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and 'a GPU is visible, but torch 2.4.1+cpu is a CPU build' in proc.stderr

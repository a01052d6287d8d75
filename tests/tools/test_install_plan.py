"""tools/install_plan.py: the CPU / CUDA decisions of tools/install.sh, with torch.version.cuda, the GPU
visibility and CLAP_DEVICE faked."""
import os.path as osp
import shlex
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools'))
import install_plan as ip  # noqa: E402


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

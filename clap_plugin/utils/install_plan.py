"""The CUDA / CPU decisions of tools/install.sh, kept here so they can be tested with faked inputs.

It runs before the package's requirements are installed: ``tools/install_plan.py`` loads this file by its path
(the package's ``__init__`` imports mmdet3d and is not run), and it imports the standard library only.

    python tools/install_plan.py plan      # prints shell assignments (CLAP_PLAN_*) for install.sh to eval
    python tools/install_plan.py check     # after the install: fails loudly when CUDA was wanted but
                                           # mmcv's ops or spconv have no CUDA kernels

Inputs (``probe()``): the installed torch's ``torch.__version__`` and ``torch.version.cuda``, whether a GPU is
visible (``torch.cuda.is_available()`` or ``nvidia-smi -L``), the GPUs' compute capabilities, the Python
version, the CPU count and memory, and the environment variables ``CLAP_DEVICE`` (``cpu`` / ``cuda``: force
the choice, e.g. on a login node without a GPU that installs for GPU jobs), ``TORCH_CUDA_ARCH_LIST`` and
``MAX_JOBS`` (kept when set). Standard library only: it runs before anything else is installed.
"""
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

SUPPORTED_PYTHON = ((3, 10), (3, 12))  # the pins (numpy 1.26, numba 0.60, mmcv 2.1 sdist) install on these
SPCONV_VERSION = '2.3.8'
MMCV_VERSION = '2.1.0'
# spconv CUDA packages published at SPCONV_VERSION (pip index versions spconv-cuXXX); a torch CUDA runtime
# uses the newest one of the same major version that is not newer than itself
SPCONV_CUDA_BUILDS = ((11, 4), (11, 8), (12, 1), (12, 4), (12, 6))
# (CUDA, torch major.minor) pairs for which OpenMMLab publishes prebuilt mmcv 2.1.0 wheels (Python <= 3.11)
MMCV_PREBUILT = {((11, 7), (2, 0)), ((11, 8), (2, 0)), ((11, 8), (2, 1)), ((12, 1), (2, 1))}
MMCV_PREBUILT_INDEX = 'https://download.openmmlab.com/mmcv/dist/cu{cuda}/torch{torch}/index.html'


class PlanError(RuntimeError):
    """The environment cannot be installed as asked; the message says what to change."""


@dataclass
class Facts:
    torch_version: str
    torch_cuda: Optional[str]  # torch.version.cuda: None for a CPU build
    gpu_visible: bool
    capabilities: Sequence[Tuple[int, int]] = ()
    python: Tuple[int, int] = (3, 11)
    nproc: int = 2
    mem_gb: float = 8.0
    env: Dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    device: str  # 'cpu' or 'cuda'
    spconv: str  # pip requirement
    mmcv_tag: str  # names the local wheel folder: a wheel built for one tag is never used for another
    mmcv_find_links: Optional[str]  # OpenMMLab's prebuilt wheel index for this torch/CUDA pair, if any
    build_env: Dict[str, str]
    pip_cache: bool  # False: --no-cache-dir (pip's cache may hold a CPU-built mmcv wheel)
    notes: List[str] = field(default_factory=list)

    def shell(self) -> str:
        values = dict(DEVICE=self.device, SPCONV=self.spconv,
                      MMCV_TAG=self.mmcv_tag, MMCV_FIND_LINKS=self.mmcv_find_links or '',
                      BUILD_ENV=' '.join(f'{k}={v}' for k, v in self.build_env.items()),
                      PIP_CACHE='1' if self.pip_cache else '0', NOTES=' | '.join(self.notes))
        return '\n'.join(f'CLAP_PLAN_{k}={shlex.quote(v)}' for k, v in values.items())


def _version_tuple(text: str, n: int = 2) -> Tuple[int, ...]:
    nums = re.findall(r'\d+', text or '')
    if len(nums) < n:
        raise PlanError(f'cannot read a version from {text!r}')
    return tuple(int(x) for x in nums[:n])


def spconv_package(torch_cuda: str) -> str:
    """``spconv-cuXYZ==2.3.8`` for a torch CUDA runtime version such as '12.4'."""
    major, minor = _version_tuple(torch_cuda)
    usable = [b for b in SPCONV_CUDA_BUILDS if b[0] == major and b <= (major, minor)]
    if not usable:
        builds = ', '.join(f'cu{a}{b}' for a, b in SPCONV_CUDA_BUILDS)
        raise PlanError(f'torch is built for CUDA {torch_cuda}, and spconv {SPCONV_VERSION} has no CUDA build for '
                        f'it (builds: {builds}); install a torch built for CUDA 11.8, 12.1, 12.4 or 12.6')
    a, b = usable[-1]
    return f'spconv-cu{a}{b}=={SPCONV_VERSION}'


def default_arch_list(torch_cuda: str, capabilities: Sequence[Tuple[int, int]]) -> str:
    """TORCH_CUDA_ARCH_LIST: the visible GPUs' compute capabilities, else the common data-centre and
    workstation GPUs that this CUDA version can compile for, with PTX for the newest."""
    if capabilities:
        archs = sorted(set(tuple(c) for c in capabilities))
    else:
        cuda = _version_tuple(torch_cuda)
        archs = [(7, 0), (7, 5), (8, 0), (8, 6)]
        if cuda >= (11, 8):
            archs += [(8, 9), (9, 0)]
        if cuda >= (12, 8):
            archs += [(10, 0), (12, 0)]
    text = ';'.join(f'{a}.{b}' for a, b in archs)
    return text + '+PTX'


def decide(facts: Facts) -> Plan:
    """The install plan for these facts; raises PlanError (with what to do) where no plan is right."""
    lo, hi = SUPPORTED_PYTHON
    if not lo <= tuple(facts.python[:2]) <= hi:
        raise PlanError(f'Python {facts.python[0]}.{facts.python[1]} is not supported: the pinned stack installs '
                        f'on Python {lo[0]}.{lo[1]} to {hi[0]}.{hi[1]}; make the venv with one of those')
    forced = (facts.env.get('CLAP_DEVICE') or '').strip().lower()
    if forced not in ('', 'cpu', 'cuda'):
        raise PlanError(f'CLAP_DEVICE={forced!r}: expected cpu or cuda')
    notes: List[str] = []
    if forced == 'cpu':
        device = 'cpu'
        if facts.gpu_visible:
            notes.append('CLAP_DEVICE=cpu: installing CPU-only builds although a GPU is visible')
    elif forced == 'cuda':
        if not facts.torch_cuda:
            raise PlanError(f'CLAP_DEVICE=cuda, but torch {facts.torch_version} is a CPU build (torch.version.cuda '
                            'is None); install a CUDA build of torch first (see README, GPU install)')
        device = 'cuda'
        if not facts.gpu_visible:
            notes.append('CLAP_DEVICE=cuda without a visible GPU: CUDA builds are installed, their kernels are '
                         'only checked on a GPU machine')
    elif facts.gpu_visible:
        if not facts.torch_cuda:
            raise PlanError(f'a GPU is visible, but torch {facts.torch_version} is a CPU build; install a CUDA '
                            'build of torch first (see README, GPU install), or set CLAP_DEVICE=cpu to install '
                            'CPU-only on purpose')
        device = 'cuda'
    else:
        device = 'cpu'
        if facts.torch_cuda:
            notes.append(f'torch is built for CUDA {facts.torch_cuda} but no GPU is visible: installing CPU builds; '
                         'set CLAP_DEVICE=cuda to install for GPU jobs')

    if device == 'cpu':
        return Plan(device='cpu', spconv=f'spconv=={SPCONV_VERSION}',
                    mmcv_tag=f'cpu-torch{".".join(map(str, _version_tuple(facts.torch_version)))}',
                    mmcv_find_links=None, build_env={'MMCV_WITH_OPS': '1'}, pip_cache=True, notes=notes)

    cuda = _version_tuple(facts.torch_cuda)
    torch_mm = _version_tuple(facts.torch_version)
    arch = facts.env.get('TORCH_CUDA_ARCH_LIST') or default_arch_list(facts.torch_cuda, facts.capabilities)
    jobs = facts.env.get('MAX_JOBS') or str(max(1, min(facts.nproc, int(facts.mem_gb // 2))))
    find_links = None
    if (cuda, torch_mm) in MMCV_PREBUILT and tuple(facts.python[:2]) <= (3, 11):
        find_links = MMCV_PREBUILT_INDEX.format(cuda=f'{cuda[0]}{cuda[1]}', torch=f'{torch_mm[0]}.{torch_mm[1]}')
    tag = f'cu{cuda[0]}{cuda[1]}-torch{torch_mm[0]}.{torch_mm[1]}-sm{arch.replace(";", "_").replace("+", "")}'
    return Plan(device='cuda', spconv=spconv_package(facts.torch_cuda), mmcv_tag=tag,
                mmcv_find_links=find_links,
                build_env={'MMCV_WITH_OPS': '1', 'FORCE_CUDA': '1', 'MAX_JOBS': jobs, 'TORCH_CUDA_ARCH_LIST': arch},
                pip_cache=False, notes=notes)


def _nvidia_smi_gpus() -> bool:
    try:
        out = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and 'GPU' in out.stdout


def probe(env: Optional[Dict[str, str]] = None) -> Facts:
    """The facts of this machine (torch must be importable)."""
    import torch
    gpu = bool(torch.cuda.is_available()) or _nvidia_smi_gpus()
    caps = []
    if torch.cuda.is_available():
        caps = [torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())]
    try:
        mem_gb = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    except (ValueError, OSError, AttributeError):
        mem_gb = 8.0
    return Facts(torch_version=torch.__version__, torch_cuda=torch.version.cuda, gpu_visible=gpu,
                 capabilities=caps, python=sys.version_info[:2], nproc=os.cpu_count() or 1, mem_gb=mem_gb,
                 env=dict(os.environ if env is None else env))


def installed_spconv() -> List[str]:
    """Names of the installed spconv distributions (``spconv``, ``spconv-cu121``, ...)."""
    from importlib import metadata
    names = set()
    for dist in metadata.distributions():
        name = (dist.metadata.get('Name') or '').lower().replace('_', '-')
        if re.fullmatch(r'spconv(-cu\d+)?', name):
            names.add(name)
    return sorted(names)


def check(device: str, gpu_visible: bool) -> List[str]:
    """Problems of the installed stack for ``device`` (empty: fine). On a visible GPU the CUDA kernels of
    mmcv and spconv are run once."""
    problems = []
    import torch
    try:
        from mmcv.ops import get_compiling_cuda_version
        mmcv_cuda = get_compiling_cuda_version()
    except Exception as exc:  # noqa: BLE001  (any import failure is the finding)
        return [f'mmcv.ops does not import: {type(exc).__name__}: {exc}']
    spconv_dists = installed_spconv()
    if device == 'cuda':
        if not torch.version.cuda:
            problems.append(f'torch {torch.__version__} is a CPU build')
        if mmcv_cuda in ('not available', '', None):
            problems.append('mmcv 2.1.0 is built without CUDA ops (get_compiling_cuda_version() = '
                            f'{mmcv_cuda!r}); rebuild it: rm -rf .venv/.clap_wheels && make install')
        if not any(d.startswith('spconv-cu') for d in spconv_dists):
            problems.append(f'spconv is the CPU-only build ({spconv_dists or "none installed"}); a CUDA build '
                            '(spconv-cuXYZ) is needed')
        if 'spconv' in spconv_dists:
            problems.append('the CPU-only spconv distribution is installed beside the CUDA one; '
                            'pip uninstall spconv, then reinstall the spconv-cuXYZ package')
        if gpu_visible and not problems:
            try:
                from mmcv.ops import nms
                boxes = torch.tensor([[0., 0., 1., 1.], [0., 0., 1., 1.1]], device='cuda')
                nms(boxes, torch.tensor([0.9, 0.8], device='cuda'), 0.5)
            except Exception as exc:  # noqa: BLE001
                problems.append(f'mmcv.ops.nms fails on CUDA: {type(exc).__name__}: {exc}')
            try:
                import spconv.pytorch as spconv
                conv = spconv.SubMConv3d(2, 4, 3, indice_key='k').cuda()
                coords = torch.tensor([[0, 1, 1, 1], [0, 1, 2, 1]], dtype=torch.int32, device='cuda')
                x = spconv.SparseConvTensor(torch.ones(2, 2, device='cuda'), coords, [4, 4, 4], 1)
                conv(x).features.sum().item()
            except Exception as exc:  # noqa: BLE001
                problems.append(f'spconv fails on CUDA: {type(exc).__name__}: {exc}')
    else:
        try:
            import spconv.pytorch  # noqa: F401
        except Exception as exc:  # noqa: BLE001
            problems.append(f'spconv.pytorch does not import: {type(exc).__name__}: {exc}')
    return problems


def stale_spconv(wanted: str, installed: Sequence[str]) -> List[str]:
    """The installed spconv distributions other than ``wanted`` (a requirement such as spconv-cu121==2.3.8):
    two spconv builds share the ``spconv`` import name, so the other device's build must be uninstalled."""
    name = re.split(r'[=<>!~ ]', wanted, maxsplit=1)[0].lower()
    return [d for d in installed if d != name]


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[0] if argv else 'plan'
    if cmd == 'plan':
        try:
            plan = decide(probe())
        except PlanError as err:
            print(f'[install] error: {err}', file=sys.stderr)
            return 2
        print(plan.shell())
        return 0
    if cmd == 'check':
        device = argv[argv.index('--device') + 1] if '--device' in argv else 'cpu'
        facts = probe()
        problems = check(device, facts.gpu_visible)
        if device == 'cpu' and facts.gpu_visible:  # only with CLAP_DEVICE=cpu: asked for, but said loudly
            print('[install] WARNING: a GPU is visible, and this is a CPU-only install (CLAP_DEVICE=cpu): '
                  'mmcv ops and spconv have no CUDA kernels', file=sys.stderr)
        if problems:
            bar = '!' * 78
            print(f'{bar}\n[install] FAILED: the {device} install is not usable:', file=sys.stderr)
            for p in problems:
                print(f'[install]   - {p}', file=sys.stderr)
            print(bar, file=sys.stderr)
            return 1
        print(f'[install] check passed for {device}' + (' (CUDA kernels of mmcv and spconv ran on the GPU)'
                                                       if device == 'cuda' and facts.gpu_visible else ''))
        return 0
    if cmd == 'stale-spconv' and len(argv) == 2:
        print(' '.join(stale_spconv(argv[1], installed_spconv())))
        return 0
    print(f'usage: {sys.argv[0]} plan | check [--device cpu|cuda] | stale-spconv REQUIREMENT', file=sys.stderr)
    return 2

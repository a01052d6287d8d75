"""GPU check of CLAP: the core components at the paper's budgets, then (where the full stack imports) a few
pre-training iterations; the checks and their options are documented in :mod:`clap_plugin.benchmarks.gpu_check`.

    python tools/benchmarks/gpu_check.py                      # CUDA: core + full stack, --amp, batch 1 and 4
    python tools/benchmarks/gpu_check.py --device cpu --rays 512 --candidates 512 --cells 256   # a quick CPU run
"""
import os.path as osp
import sys
import types

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
# a bare CUDA machine has torch and mmengine only: enter the package without its __init__, which imports the
# BEVFusion encoders (spconv, mmcv's ops, mmdet3d)
_package = types.ModuleType('clap_plugin')
_package.__path__ = [osp.join(REPO, 'clap_plugin')]
sys.modules.setdefault('clap_plugin', _package)
from clap_plugin.benchmarks.gpu_check import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

"""The CUDA / CPU decisions of tools/install.sh (see clap_plugin/utils/install_plan.py).

    python tools/install_plan.py plan | check [--device cpu|cuda] | stale-spconv REQUIREMENT

It runs before the package's requirements are installed, so it loads that module by its path: the package's
``__init__`` (mmdet3d, spconv, mmcv) is not imported.
"""
import importlib.util
import os.path as osp
import sys

MODULE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'clap_plugin', 'utils', 'install_plan.py')


def load():
    """The install-plan module, loaded by path (registered under its name: its dataclasses need it)."""
    spec = importlib.util.spec_from_file_location('clap_install_plan', MODULE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


if __name__ == '__main__':
    sys.exit(load().main())

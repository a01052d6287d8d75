"""`projects` is a PEP 420 namespace package: an mmdetection3d checkout's projects/BEVFusion and this package's
projects/PPKT (SimIPU, CMCR) import side by side, whichever comes first on sys.path."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

_PROBE = r'''
import importlib, importlib.util, json, os.path as osp, sys
upstream, repo, order = sys.argv[1], sys.argv[2], sys.argv[3]
# the interpreter's own entries, less any other folder holding a projects/ tree (another checkout of this repo)
rest = [p for p in sys.path if p and not osp.isdir(osp.join(p, 'projects'))]
sys.path[:] = ([upstream, repo] if order == 'upstream-first' else [repo, upstream]) + rest
out = {}
out['bevfusion_spec'] = importlib.util.find_spec('projects.BEVFusion.bevfusion').origin
import projects
out['projects_path'] = list(projects.__path__)
out['projects_file'] = getattr(projects, '__file__', None)
bev = importlib.import_module('projects.BEVFusion.bevfusion')
out['bevfusion_marker'] = bev.MARKER
if sys.argv[4] == 'import':
    # what a config's custom_imports does
    from mmengine.config import Config
    from mmengine.utils import import_modules_from_strings
    cfg = Config.fromfile(osp.join(repo, 'projects/PPKT/configs/ppkt_pretrain_nus_cpu-tiny.py'))
    import_modules_from_strings(**cfg.custom_imports)
    ppkt = sys.modules['projects.PPKT.ppkt']
    out['ppkt_file'] = ppkt.__file__
    from mmdet3d.registry import MODELS
    out['ppkt_registered'] = MODELS.get('PPKTPretrainer') is not None
    out['bevfusion_after'] = importlib.util.find_spec('projects.BEVFusion.bevfusion').origin
else:
    out['ppkt_spec'] = importlib.util.find_spec('projects.PPKT.ppkt').origin
print('RESULT ' + json.dumps(out))
'''


@pytest.fixture(scope='module')
def upstream(tmp_path_factory):
    """A stand-in for an mmdetection3d checkout: projects/BEVFusion/bevfusion/ with no projects/__init__.py."""
    root = tmp_path_factory.mktemp('mmdetection3d')
    pkg = root / 'projects' / 'BEVFusion' / 'bevfusion'
    pkg.mkdir(parents=True)
    (pkg / '__init__.py').write_text("MARKER = 'upstream-bevfusion'\n")
    return str(root)


def _probe(upstream: str, order: str, mode: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    proc = subprocess.run([sys.executable, '-c', _PROBE, upstream, REPO, order, mode], capture_output=True,
                          text=True, env=env, cwd=upstream, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')][-1]
    return json.loads(line[len('RESULT '):])


def test_projects_is_not_a_regular_package():
    assert not osp.exists(osp.join(REPO, 'projects', '__init__.py'))
    with open(osp.join(REPO, 'setup.py'), encoding='utf-8') as f:
        setup_py = f.read()
    assert 'find_namespace_packages' in setup_py


@pytest.mark.parametrize('order', ['upstream-first', 'ours-first'])
def test_upstream_portion_found_beside_ours(upstream, order):
    out = _probe(upstream, order, 'spec')
    assert out['projects_file'] is None  # a namespace package has no __init__ file
    assert set(out['projects_path']) == {osp.join(upstream, 'projects'), osp.join(REPO, 'projects')}
    assert out['bevfusion_spec'] == osp.join(upstream, 'projects', 'BEVFusion', 'bevfusion', '__init__.py')
    assert out['bevfusion_marker'] == 'upstream-bevfusion'
    assert out['ppkt_spec'] == osp.join(REPO, 'projects', 'PPKT', 'ppkt', '__init__.py')


def test_baseline_config_custom_imports_beside_upstream(upstream):
    out = _probe(upstream, 'upstream-first', 'import')
    assert out['ppkt_file'] == osp.join(REPO, 'projects', 'PPKT', 'ppkt', '__init__.py')
    assert out['ppkt_registered']
    assert out['bevfusion_after'].startswith(upstream)

"""Each baseline project imports only clap_plugin and itself (shared pieces live in clap_plugin), as mmdet3d's
projects do: in its code, in its configs' ``custom_imports`` and ``_base_`` files; clap_plugin imports no project;
and no project re-defines a shared piece."""
import ast
import glob
import os.path as osp

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROJECTS = osp.join(REPO, 'projects')


def _imported_modules(path):
    """Absolute module names imported by a Python file (relative imports are the file's own package)."""
    names = []
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.append(node.module or '')
    return names


def _project_of(path):
    return osp.relpath(path, PROJECTS).split(osp.sep)[0]


def test_projects_do_not_import_each_other():
    bad = []
    for path in glob.glob(osp.join(PROJECTS, '*', '**', '*.py'), recursive=True):
        own = _project_of(path)
        bad += [(osp.relpath(path, REPO), n) for n in _imported_modules(path)
                if n.startswith('projects.') and n.split('.')[1] != own]
    assert not bad, bad


def test_project_configs_use_only_clap_plugin_and_their_own_project():
    configs = glob.glob(osp.join(PROJECTS, '*', 'configs', '**', '*.py'), recursive=True)
    assert configs
    bad = []
    for path in configs:
        own = _project_of(path)
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == '_base_'
                                                    for t in node.targets):
                bases = ast.literal_eval(node.value)
                for base in [bases] if isinstance(bases, str) else bases:
                    where = osp.relpath(osp.normpath(osp.join(osp.dirname(path), base)), REPO)
                    if not (where.startswith('configs' + osp.sep)
                            or where.startswith(osp.join('projects', own) + osp.sep)):
                        bad.append((osp.relpath(path, REPO), base))
        if '/_base_/' in path:
            continue
        for name in Config.fromfile(path).get('custom_imports', {}).get('imports', []):
            if name != 'clap_plugin' and not name.startswith('clap_plugin.') and \
                    not name.startswith(f'projects.{own}.'):
                bad.append((osp.relpath(path, REPO), name))
    assert not bad, bad


def test_clap_plugin_imports_no_project():
    bad = []
    for path in glob.glob(osp.join(REPO, 'clap_plugin', '**', '*.py'), recursive=True):
        bad += [(osp.relpath(path, REPO), n) for n in _imported_modules(path) if n.split('.')[0] == 'projects']
    assert not bad, bad


def test_projects_do_not_redefine_shared_pieces():
    """Projection, keyframe selection, point-pixel pairs, InfoNCE and the pair pre-trainer base are defined
    once, in clap_plugin (models/geometry, models/contrastive)."""
    import clap_plugin.models.contrastive as contrastive
    import clap_plugin.models.geometry as geometry
    shared = set(contrastive.__all__) | set(geometry.__all__)
    bad = []
    for path in glob.glob(osp.join(PROJECTS, '*', '**', '*.py'), recursive=True):
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in shared:
                bad.append((osp.relpath(path, REPO), node.name))
    assert not bad, bad

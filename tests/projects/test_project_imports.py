"""Each baseline project imports only clap_plugin and itself (shared pieces live in clap_plugin)."""
import ast
import glob
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_projects_do_not_import_each_other():
    bad = []
    for path in glob.glob(osp.join(REPO, 'projects', '*', '**', '*.py'), recursive=True):
        own = osp.relpath(path, osp.join(REPO, 'projects')).split(osp.sep)[0]
        for node in ast.walk(ast.parse(open(path).read())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ''] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad += [(osp.relpath(path, REPO), n) for n in names
                    if n.startswith('projects.') and n.split('.')[1] != own]
    assert not bad, bad

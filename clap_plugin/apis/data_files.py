"""A one-line error naming the first info file a config reads that does not exist, with the
tools/create_data.py command that makes it."""
import os
import os.path as osp
from typing import Any, Optional, Sequence

from mmengine.config import Config


def _data_file_refs(node: Any, where: str, root: Optional[str] = None):
    """(config path, file, data root, nuScenes version) of every info file a dataset / evaluator / GT sampler
    config reads: ``ann_file`` (relative to the dataset's ``data_root``, as mmengine's BaseDataset resolves
    it) and ``db_sampler.info_path``."""
    if isinstance(node, dict):
        root = node.get('data_root', root)
        version = (node.get('metainfo') or {}).get('version') if isinstance(node.get('metainfo'), dict) else None
        if isinstance(node.get('ann_file'), str) and node['ann_file']:
            path = node['ann_file']
            if 'type' in node and 'Metric' not in str(node.get('type')) and root and not osp.isabs(path):
                path = osp.join(root, path)  # a dataset; a metric reads ann_file as given
            yield f'{where}.ann_file', path, root, version
        if isinstance(node.get('info_path'), str):
            yield f'{where}.info_path', node['info_path'], root, version
        for key, value in node.items():
            yield from _data_file_refs(value, f'{where}.{key}', root)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _data_file_refs(value, f'{where}.{i}', root)


def check_data_files(cfg: Config, sections: Sequence[str]) -> None:
    """Exit with one line naming the first missing info file of ``sections`` and the command that makes it."""
    for section in sections:
        node = cfg.get(section, None)
        if node is None:
            continue
        node = node.to_dict() if hasattr(node, 'to_dict') else node
        for where, path, root, version in _data_file_refs(node, section):
            if osp.isfile(path):
                continue
            name = osp.basename(path)
            tag = name.split('_dbinfos_')[0] if '_dbinfos_' in name else name.split('_infos_')[0]
            root = root or cfg.get('data_root', None) or osp.dirname(path)
            found = sorted(d for d in os.listdir(root) if d.startswith('v1.0-')) if osp.isdir(root) else []
            version = version or cfg.get('nus_version', None)
            if version not in found and len(found) == 1:
                version = found[0]  # the version folder this root holds
            version = version or 'v1.0-trainval'
            out_dir = osp.dirname(path) or '.'
            raise SystemExit(
                f'error: {where} = {path!r} does not exist; make it with: python tools/create_data.py nuscenes '
                f'--root-path {root} --out-dir {out_dir} --extra-tag {tag} --version {version}'
                + (' (GT-sampling database: leave out --no-dbinfos)' if '_dbinfos_' in name else ''))

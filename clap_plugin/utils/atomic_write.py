"""Write result files completely or not at all: a temporary name beside the target, then a rename."""
import json
import os
import os.path as osp
import tempfile


def write_json_atomic(path: str, obj, indent: int = 2) -> None:
    """Dump ``obj`` as JSON to ``path``; a crash leaves either the old file or none, never half of one."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(obj, f, indent=indent)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)

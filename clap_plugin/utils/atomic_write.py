"""Write files completely or not at all: a temporary name beside the target, then a rename.

A crash or a kill at any point leaves either the old file or none, never half of one. The temporary file is
hidden (``.<name>.<random>.tmp``) in the target's folder, so the rename stays on one file system.
"""
import glob
import json
import os
import os.path as osp
import tempfile
from typing import List

TMP_SUFFIX = '.tmp'


def write_bytes_atomic(path: str, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path``; with ``fsync`` the bytes reach the disk before the rename."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path) + '.', suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: str, text: str, encoding: str = 'utf-8') -> None:
    """Write ``text`` to ``path`` (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: str, obj, indent: int = 2) -> None:
    """Dump ``obj`` as JSON to ``path``; a crash leaves either the old file or none, never half of one."""
    write_bytes_atomic(path, json.dumps(obj, indent=indent).encode('utf-8'), fsync=False)


def stale_temporaries(folder: str) -> List[str]:
    """Temporary files that a killed writer left in ``folder`` (never the targets themselves)."""
    return sorted(glob.glob(osp.join(folder, '.*' + TMP_SUFFIX)))

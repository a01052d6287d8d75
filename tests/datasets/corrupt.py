"""Ways to break sensor files as they break in the field, for the bad-sample tests."""
import os
import os.path as osp
import shutil

import numpy as np


def copy_tree(src: str, dst: str, keep_infos: bool = True) -> str:
    """A copy of a synthetic nuScenes tree without its ground-truth maps and GT database (and infos unless
    ``keep_infos``)."""
    ignore = ['synthetic_gt', '*_gt_database', '*_dbinfos_*.pkl'] + ([] if keep_infos else ['*.pkl'])
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*ignore))
    return dst


def jpeg_header_end(data: bytes) -> int:
    """Offset of the first byte after the start-of-scan segment (where the entropy-coded body starts)."""
    sos = data.index(b'\xff\xda')
    return sos + 2 + int.from_bytes(data[sos + 2:sos + 4], 'big')


def corrupt_jpeg(path: str, keep: int = -1, restore_eoi: bool = False, seed: int = 0) -> None:
    """Replace the bytes after the first ``keep`` (default: the whole header, up to the body) with random
    bytes, same size; with ``restore_eoi`` the last two bytes are the end-of-image marker again."""
    with open(path, 'rb') as f:
        data = f.read()
    keep = jpeg_header_end(data) if keep < 0 else keep
    body = np.random.default_rng(seed).integers(0, 256, len(data) - keep, dtype=np.uint8).tobytes()
    if restore_eoi:
        body = body[:-2] + b'\xff\xd9'
    with open(path, 'wb') as f:
        f.write(data[:keep] + body)
    assert osp.getsize(path) == len(data)


def truncate(path: str, nbytes: int = 7) -> None:
    """Cut the last ``nbytes`` bytes off a file (an interrupted copy)."""
    size = os.path.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(size - nbytes)

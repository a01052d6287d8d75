"""What a loader does with a sensor file it cannot read or decode (a *bad sample*).

Every loader of this package (cameras, LiDAR keyframe and sweeps, GT-database objects) reports such a file as
one line naming the file, the sample token and the sensor, and the command that checks the whole data set
(``tools/create_data.py ... --check-only``), then, by its ``on_bad_sample`` argument:

- ``'raise'`` (the default): raise :class:`BadSampleError` and stop the run. A bad file is a broken data set;
  training on around it silently would change the data without anybody noticing.
- ``'skip'``: log the line as a warning with a running count, and return None from the transform. mmengine's
  ``BaseDataset`` then draws another sample, in training mode only (``test_mode=False``: the fine-tuning
  configs); in test mode mmengine refuses a None sample, so ``--cfg-options on_bad_sample=skip`` refuses a
  training dataset built with ``test_mode=True`` (the label-free pre-training configs). A GT-database object
  that cannot be read is left out of the paste instead (the scene itself is fine).
"""
import glob
import logging
import os.path as osp
import re
from typing import Optional, Set

from mmengine.logging import print_log

ON_BAD_SAMPLE = ('raise', 'skip')


class BadSampleError(ValueError):
    """A sensor file of a sample cannot be read or decoded. One message string (so that torch's DataLoader
    can re-raise it from a worker process), one line: file, sample token, sensor, reason, how to check."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class SensorFileError(Exception):
    """Internal: ``path`` cannot be read or decoded for ``reason``; the loader turns it into a bad sample."""

    def __init__(self, reason: str, path: str = '') -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


def check_on_bad_sample(value: str) -> str:
    """``value`` when it is a known policy, else a ValueError naming the choices."""
    if value not in ON_BAD_SAMPLE:
        raise ValueError(f"on_bad_sample must be 'raise' or 'skip', got {value!r}")
    return value


def _one_line(text: str) -> str:
    return ' '.join(str(text).split())


def _data_root_of(path: str) -> Optional[str]:
    """The nuScenes root above ``samples/`` / ``sweeps/`` (or the folder of a ``*_gt_database``), if any."""
    norm = path.replace('\\', '/')
    match = re.search(r'^(.*?)/?(?:samples|sweeps)/[^/]+/[^/]+$', norm)
    if match:
        return match.group(1) or '.'
    match = re.search(r'^(.*?)/?[^/]*_gt_database/[^/]+$', norm)
    if match:
        return match.group(1) or '.'
    return None


def check_command(path: str) -> str:
    """The tools/create_data.py command that checks the whole set ``path`` belongs to."""
    root = _data_root_of(path)
    version = 'VERSION'
    if root is not None:
        found = sorted(osp.basename(d) for d in glob.glob(osp.join(root, 'v1.0-*')) if osp.isdir(d))
        if len(found) == 1:
            version = found[0]
    root = root if root is not None else 'DATA_ROOT'
    return (f'python tools/create_data.py nuscenes --root-path {root} --out-dir {root} --version {version} '
            '--check-only')


def bad_sample_message(path: str, sensor: str, reason: str, sample_token: Optional[str] = None,
                       sample_data_token: Optional[str] = None, where: Optional[str] = None) -> str:
    """The one-line report of a bad sensor file.

    Args:
        path: the file.
        sensor: e.g. ``CAM_FRONT``, ``LIDAR_TOP``, ``LIDAR_TOP sweep``, ``LIDAR_TOP GT-database object``.
        reason: what is wrong (whitespace, newlines included, is collapsed).
        sample_token: token of the sample being loaded (``results['token']`` of the v2 infos).
        sample_data_token: the file's own sample_data token, where the infos have it (sweeps).
        where: replaces the token part where there is no sample token (GT-database objects).
    """
    ident = where if where is not None else f'sample token {sample_token if sample_token else "unknown"}'
    if sample_data_token:
        ident += f', sample_data token {sample_data_token}'
    return _one_line(f'bad sample: {sensor} file {path} ({ident}): {reason}. '
                     f'Check the whole set with: {check_command(path)}')


_SKIPPED = {'count': 0}
_SKIPPED_FILES: Set[str] = set()


def skipped_bad_samples() -> int:
    """How many bad samples the loaders of this process skipped (``on_bad_sample='skip'``)."""
    return _SKIPPED['count']


def raise_or_skip(message: str, path: str, on_bad_sample: str) -> None:
    """Raise :class:`BadSampleError` (``'raise'``), or log ``message`` with the running count and return None
    (``'skip'``; the caller returns None too)."""
    if on_bad_sample != 'skip':
        raise BadSampleError(message) from None  # the one line says it all; no chained traceback
    _SKIPPED['count'] += 1
    _SKIPPED_FILES.add(path)
    print_log(f'{message} -- skipped (on_bad_sample=skip): skip {_SKIPPED["count"]} in this process, '
              f'{len(_SKIPPED_FILES)} distinct bad files', logger='current', level=logging.WARNING)
    return None

"""A hook that kills its own training process with SIGKILL, as a preemption or an OOM killer would: before a
given iteration, or halfway through writing a given file (a checkpoint or ``last_checkpoint``).

Used by the long-run tests through ``custom_imports=['tests.helpers.self_kill_hook']`` in a subprocess whose
``PYTHONPATH`` holds the repository root. Halfway through a write: both the plain ``open`` that mmengine uses
and the ``os.fdopen`` of a temporary file are intercepted, so the kill happens whichever way the file is
written, and only half of the bytes reach the disk.
"""
import builtins
import os
import os.path as osp
import signal
from typing import Optional

from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _HalfWriter:
    """Forwards to a file object, but its first ``write`` writes half of the data, flushes, and kills."""

    def __init__(self, f) -> None:
        self._f = f

    def write(self, data):
        self._f.write(data[:len(data) // 2])
        self._f.flush()
        os.fsync(self._f.fileno())
        _die()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._f, name)


@HOOKS.register_module()
class SelfKillHook(Hook):
    """Kill the process before training iteration ``at_iter`` (0-based), or during the ``nth`` write of a file
    whose name, or the name its temporary file stands for, is ``during_write_of``."""

    priority = 'HIGHEST'

    def __init__(self, at_iter: Optional[int] = None, during_write_of: Optional[str] = None, nth: int = 1) -> None:
        self.at_iter = at_iter
        self.during_write_of = during_write_of
        self.nth = nth
        self.seen = 0

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if self.at_iter is not None and runner.iter == self.at_iter:
            _die()

    def before_run(self, runner) -> None:
        if self.during_write_of is None:
            return
        target = self.during_write_of

        def names_target(path: str) -> bool:
            base = osp.basename(str(path))
            if not (base == target or base.startswith('.' + target + '.')):
                return False
            self.seen += 1
            return self.seen == self.nth

        real_open, real_fdopen = builtins.open, os.fdopen

        def open_(file, mode='r', *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            return _HalfWriter(f) if 'w' in mode and isinstance(file, (str, bytes, os.PathLike)) and \
                names_target(os.fsdecode(file)) else f

        def fdopen(fd, mode='r', *args, **kwargs):
            f = real_fdopen(fd, mode, *args, **kwargs)
            path = os.readlink(f'/proc/self/fd/{fd}') if osp.exists(f'/proc/self/fd/{fd}') else ''
            return _HalfWriter(f) if 'w' in mode and names_target(path) else f

        builtins.open = open_
        os.fdopen = fdopen

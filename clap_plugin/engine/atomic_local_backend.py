"""A local file backend whose writes are atomic, for checkpoints (mmengine's ``LocalBackend`` writes in place).

mmengine saves a checkpoint by ``put``-ting its bytes to the final name: a kill during the write leaves a
truncated ``epoch_N.pth`` that ``load_from`` or a user may pick up. Registered as ``clap_atomic_local``;
:class:`~clap_plugin.engine.hooks.atomic_checkpoint_hook.AtomicCheckpointHook` selects it through
``backend_args=dict(backend='clap_atomic_local')``.
"""
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from ..utils.atomic_write import write_bytes_atomic, write_text_atomic

BACKEND_NAME = 'clap_atomic_local'


@register_backend(BACKEND_NAME, force=True)
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` with ``put`` / ``put_text`` through a temporary file and a rename."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        write_bytes_atomic(str(filepath), obj)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        write_text_atomic(str(filepath), obj, encoding=encoding)

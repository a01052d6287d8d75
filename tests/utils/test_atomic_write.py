"""Atomic writes: a failure while writing leaves the old file untouched and no temporary file behind."""
import os

import pytest
from mmengine.fileio import get_file_backend

from clap_plugin.engine.atomic_local_backend import BACKEND_NAME
from clap_plugin.utils.atomic_write import stale_temporaries, write_bytes_atomic


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_1.pth'
    write_bytes_atomic(str(path), b'old')

    def boom(fd):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'fsync', boom)
    with pytest.raises(OSError, match='disk full'):
        write_bytes_atomic(str(path), b'new contents')
    assert path.read_bytes() == b'old'
    assert stale_temporaries(str(tmp_path)) == []


def test_checkpoint_backend_writes_through_a_rename(tmp_path, monkeypatch):
    backend = get_file_backend(str(tmp_path), backend_args=dict(backend=BACKEND_NAME))
    renamed = []
    real = os.replace
    monkeypatch.setattr(os, 'replace', lambda a, b: (renamed.append((os.path.basename(a), b)), real(a, b)))
    backend.put(b'abc', str(tmp_path / 'iter_2.pth'))
    assert (tmp_path / 'iter_2.pth').read_bytes() == b'abc'
    assert len(renamed) == 1 and renamed[0][0].startswith('.iter_2.pth.') and renamed[0][0].endswith('.tmp')

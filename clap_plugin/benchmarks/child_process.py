"""Run one benchmark measurement in a fresh Python process (peak memory is per process)."""
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # holds clap_plugin/ and projects/


def run_module(module: str, args: Sequence[str], env: Optional[Dict[str, str]] = None,
               **kwargs) -> subprocess.CompletedProcess:
    """``python -m module args`` with this repository first on ``PYTHONPATH``; output captured as text."""
    env = dict(os.environ if env is None else env)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    return subprocess.run([sys.executable, '-m', module, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=kwargs.pop('cwd', REPO), **kwargs)

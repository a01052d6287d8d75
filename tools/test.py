"""Evaluate a checkpoint with a config's test dataloader and evaluator (mmdet3d's CLI); the logic and the
options are documented in :mod:`clap_plugin.apis.test`.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...] [--show-dir DIR]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: clap_plugin, projects/
from clap_plugin.apis.test import main  # noqa: E402

if __name__ == '__main__':
    main(sys.argv[1:])

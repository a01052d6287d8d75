"""Evaluate a checkpoint with a config's test dataloader and evaluator (mmdet3d's CLI).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...] [--show-dir DIR]
                         [--score-thr T] [--launcher {none,pytorch,slurm,mpi}]

Prints the evaluator's metrics (NuScenesMetric: mAP, NDS, per-class AP, ...). ``--cfg-options data_root=DIR``
moves every path under the config's data root, as in tools/train.py.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: clap_plugin, projects/
from clap_plugin.apis.test import main  # noqa: E402

if __name__ == '__main__':
    main(sys.argv[1:])

"""Train a detector or a pre-training model from a config (mmdet3d's CLI); the logic and the options are
documented in :mod:`clap_plugin.apis.train`.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: clap_plugin, projects/
from clap_plugin.apis.launcher import close_process_group  # noqa: E402
from clap_plugin.apis.train import main  # noqa: E402

if __name__ == '__main__':
    main(sys.argv[1:])
    close_process_group()

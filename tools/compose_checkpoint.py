"""Compose the start checkpoints of mmdet3d's two-stage BEVFusion recipe from pre-trained encoders;
the logic and the options: :mod:`clap_plugin.apis.compose_checkpoint`.

    python tools/compose_checkpoint.py lidar-stage PRETRAINED OUT
    python tools/compose_checkpoint.py lidar-cam-stage STAGE1 PRETRAINED OUT [--fusion-layer]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: clap_plugin, projects/
from clap_plugin.apis.compose_checkpoint import main  # noqa: E402

if __name__ == '__main__':
    main(sys.argv[1:])

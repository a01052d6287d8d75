"""Merge two separately pre-trained checkpoints (UniPAD-style) into one encoder-only checkpoint;
the logic and the options: :mod:`clap_plugin.apis.merge_pretrained`.

    python tools/merge_pretrained.py LIDAR_CKPT CAMERA_CKPT OUT
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: clap_plugin, projects/
from clap_plugin.apis.merge_pretrained import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

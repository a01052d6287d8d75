"""Frozen-encoder probe of encoder exports, side by side: only the CPU-tiny detector's ``bbox_head`` trains; see
:mod:`clap_plugin.benchmarks.compare_encoders`.

    python tools/benchmarks/frozen_probe.py --data-root data/nuscenes/ --arm scratch= --arm clap=clap_encoders.pth
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from clap_plugin.benchmarks.compare_encoders import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

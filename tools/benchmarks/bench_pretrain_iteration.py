"""Per pre-training iteration, time and peak memory of CLAP with curvature sampling, of joint rendering without
sampling and of UniPAD-style separate pre-training, side by side (:mod:`clap_plugin.benchmarks.pretrain_iteration`).

    python tools/benchmarks/bench_pretrain_iteration.py --data-root data/nuscenes/ \
        [--config configs/clap_pretrain_nus_cpu-tiny.py] [--joint-pixels 2048] [--iters 2]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from clap_plugin.benchmarks.pretrain_iteration import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

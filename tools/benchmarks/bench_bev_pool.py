"""Benchmark BEV pooling: the pure-PyTorch scatter-add ``bev_pool`` against the naive per-point loop; the cases
are described in :mod:`clap_plugin.benchmarks.bev_pool_speed`.

    python tools/benchmarks/bench_bev_pool.py [--device cuda] [--repeats 5] [--skip-naive-full] [--threads 1]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from clap_plugin.benchmarks.bev_pool_speed import main  # noqa: E402

if __name__ == '__main__':
    main(sys.argv[1:])

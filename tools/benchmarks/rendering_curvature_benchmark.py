"""Benchmark of the CLAP rendering head and the curvature scoring (throughput, memory per ray count and chunk
size, curvature cost against one rendering step); see :mod:`clap_plugin.benchmarks.rendering_curvature`.

    python tools/benchmarks/rendering_curvature_benchmark.py [--device cuda] [--rays 1024 4096 16384 65536]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from clap_plugin.benchmarks.rendering_curvature import main  # noqa: E402

if __name__ == '__main__':
    main(sys.argv[1:])

"""Rendering step before / after a change, side by side in one run (time and peak memory of
``CLAPRenderingHead.loss`` at the paper's ray budgets); see :mod:`clap_plugin.benchmarks.rendering_step`.

    python tools/benchmarks/bench_rendering_step.py --before-ref 5034d31 [--repeats 2] [--scale 1.0]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from clap_plugin.benchmarks.rendering_step import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

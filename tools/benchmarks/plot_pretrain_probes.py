"""Figures of the learning-signal probes: training curves of CLAP pre-training runs and the probe results; see
:mod:`clap_plugin.visualization.learning_signal_figure`.

    python tools/benchmarks/plot_pretrain_probes.py --runs short=WORK_DIR_A long=WORK_DIR_B \
        --probes random=R0.json,R1.json,R2.json short=A.json long=B.json --out tools/benchmarks/learning_signal.png
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from clap_plugin.visualization.learning_signal_figure import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

"""Where a CPU-tiny fine-tuning iteration goes, and what the label-efficiency benchmark saves, side by side; the
measurements are described in :mod:`clap_plugin.benchmarks.finetune_iteration`.

    OMP_NUM_THREADS=1 python tools/benchmarks/bench_finetune_iteration.py --data-root data/nuscenes/ \
        [--samples 4] [--repeats 3] [--out tools/benchmarks/finetune_iteration.json]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from clap_plugin.benchmarks.finetune_iteration import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

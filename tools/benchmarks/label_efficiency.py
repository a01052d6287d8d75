"""The label-efficiency benchmark: pre-train every arm, probe and fine-tune BEVFusion on few labels.

    python tools/benchmarks/label_efficiency.py                       # default setting, work_dirs/label_efficiency
    python tools/benchmarks/label_efficiency.py --smoke --out /tmp/le  # a few minutes: every job kind once
    python tools/benchmarks/label_efficiency.py --report-only --md tools/benchmarks/label_efficiency.md
    python tools/benchmarks/label_efficiency.py --preset paper --data-root data/nuscenes/ --gpus 8 \
        --teacher-checkpoint swin-t.pth --out work_dirs/le_paper     # the paper's protocol, GPU machine

Everything else (presets, jobs, resuming, the report): clap_plugin/benchmarks/label_efficiency/cli.py and
docs/benchmarks.md.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

if __name__ == '__main__':
    from clap_plugin.benchmarks.label_efficiency.cli import main
    sys.exit(main())

"""Probe a CLAP pre-training from outside: prototype collapse and agreement, curvature enrichment on boxes, and a
frozen-feature linear probe of object vs background per BEV cell; see :mod:`clap_plugin.evaluation.pretrain_probe_run`.

    python tools/benchmarks/probe_pretraining.py configs/clap_pretrain_nus_cpu-tiny.py \
        --checkpoint work_dirs/pretrain/epoch_4.pth --data-root data/nuscenes/ --out probe.json
    # the same model at its random initialisation (the probe's baseline): leave out --checkpoint
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from clap_plugin.evaluation.pretrain_probe_run import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

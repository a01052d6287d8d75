"""The label-efficiency benchmark: pre-train every arm, then probe and fine-tune CPU-tiny BEVFusion on few labels
(or, preset ``paper``, pre-train and fine-tune the full-size models on real nuScenes through ``tools/dist_train.sh``).

Entry point: ``tools/benchmarks/label_efficiency.py``. The pieces:

* :mod:`.setting` — the sizes of one benchmark run (data, schedules, fractions, seeds, protocol), with presets;
* :mod:`.arms` — the pre-training arms compared (scratch, UniPAD-style, joint rendering, CLAP, PPKT, ...), each
  stage with its CPU-tiny and its full-size config;
* :mod:`.plan` — the jobs of a run and their dependencies; :mod:`.scheduler` runs them, resumably;
* :mod:`.jobs` — the runners of the jobs and the commands they run; :mod:`.dry_run` prints those commands and
  builds their configs without running anything;
* :mod:`.frozen_probe` — the frozen-encoder probe (cached BEV features, only ``bbox_head`` trains);
* :mod:`.pretext` — rendered depth / RGB error of the rendering arms before and after pre-training;
* :mod:`.report` — the aggregate table (mean +- std, differences +- standard error) and the plot.
"""
from .arms import ARMS, Arm, PretrainStage
from .setting import PRESETS, Setting

__all__ = ['ARMS', 'Arm', 'PretrainStage', 'PRESETS', 'Setting']

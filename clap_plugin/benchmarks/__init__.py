"""Benchmarks: the library side of ``tools/benchmarks/`` (each tool there parses its arguments and calls one
``main`` here).

* :mod:`.label_efficiency` — pre-train every arm, then probe and fine-tune on few labels;
* :mod:`.compare_encoders` — the frozen-encoder probe of a few encoder exports side by side;
* :mod:`.gpu_check` — the core modules at the paper's budgets and a few full iterations (torch + mmengine only);
* :mod:`.pretrain_iteration`, :mod:`.rendering_step`, :mod:`.rendering_curvature`, :mod:`.finetune_iteration`,
  :mod:`.bev_pool_speed` — timing and memory benchmarks;
* :mod:`.timing`, :mod:`.child_process` — their timers, peak-memory readings, synthetic rays and fresh processes.

The probe of one pre-training (prototypes, curvature, linear probe) is :mod:`clap_plugin.evaluation.pretrain_probe`.
Nothing is imported here: the GPU check enters the package without mmdet3d.
"""

"""What a fine-tuning iteration costs under each model variant, measured side by side in one process.

Every variant's model is built from the same fine-tune config (:func:`.variant.apply_variant`), with the same seed,
on the same training samples; the variants take turns iteration by iteration (A, B, C, A, B, C, ...), so that a
change of machine load falls on all of them alike, and each one's median iteration time is divided into the first
variant's. One iteration is a training step of batch 2 (forward, backward, AdamW step), data loading excluded; the
forward time of each module is recorded too (where the iteration goes). The steps cut one thing at a time:
``cpu-tiny`` -> ``+images`` (64 x 192) -> ``+range`` (+-32.4 m) -> ``cpu-bench`` (also the keyframe's points only)
-> ``cpu-fast`` (0.3 m voxels and 2.4 m BEV cells over +-33.6 m; its smaller source images only change loading,
which is not timed here).
"""
import copy
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Sequence

from ..finetune_iteration import time_module_forwards
from .variant import VARIANTS, ModelVariant

STEPS: Sequence[ModelVariant] = (
    VARIANTS['cpu-tiny'],
    ModelVariant('+images', image_size=(64, 192)),
    ModelVariant('+range', image_size=(64, 192), half_extent=32.4),
    VARIANTS['cpu-bench'],
    VARIANTS['cpu-fast'],
)


@dataclass
class VariantCost:
    """Median seconds of one training iteration (batch 2) and of each module's forward, and the speed-up over the
    first variant of the same run."""
    name: str
    iteration: float
    forward: Dict[str, float] = field(default_factory=dict)
    speedup: float = 1.0


def _timed_model(cfg):
    """The seeded model of ``cfg`` in train mode, the per-module forward times it records, and its optimizer."""
    import torch
    from mmdet3d.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    model.train()
    return model, time_module_forwards(model), build_optim_wrapper(model, cfg.optim_wrapper)


def _train_dataset(cfg, data_root: str, version: str):
    from mmdet3d.registry import DATASETS
    ds = copy.deepcopy(cfg.train_dataloader.dataset)
    while ds.get('type') == 'LabelFractionDataset':
        ds = ds.dataset
    ds.data_root = data_root
    ds.metainfo = dict(ds.get('metainfo') or {}, version=version)
    return DATASETS.build(ds)


def measure(config: str, data_root: str, version: str, steps: Sequence[ModelVariant] = STEPS, samples: int = 8,
            iters: int = 4) -> List[VariantCost]:
    """Side-by-side iteration costs of ``steps`` (see the module docstring); ``iters`` timed iterations each after
    one warm-up, on ``samples`` training samples loaded once."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate

    from .variant import apply_variant
    runs = []
    for v in steps:
        cfg = apply_variant(Config.fromfile(config), v)
        ds = _train_dataset(cfg, data_root, version)
        loaded = [ds[i % len(ds)] for i in range(samples)]
        model, forward, optim = _timed_model(cfg)
        runs.append(dict(variant=v, samples=loaded, model=model, optim=optim, forward=forward, times=[]))
    for k in range(iters + 1):
        for r in runs:
            batch = pseudo_collate([r['samples'][(2 * k) % samples], r['samples'][(2 * k + 1) % samples]])
            t0 = time.perf_counter()
            data = r['model'].data_preprocessor(batch, True)
            loss, _ = r['model'].parse_losses(r['model'](**data, mode='loss'))
            r['optim'].update_params(loss)
            if k > 0:  # the first iteration warms caches up
                r['times'].append(time.perf_counter() - t0)
    out = []
    for r in runs:
        it = statistics.median(r['times'])
        fwd = {m: statistics.median(v[1:]) for m, v in r['forward'].items() if len(v) > 1}
        out.append(VariantCost(r['variant'].name, it, fwd, out[0].iteration / it if out else 1.0))
    return out


def to_markdown(costs: Sequence[VariantCost]) -> List[str]:
    """A table: each variant's iteration time, speed-up over the first and the three largest module forwards."""
    lines = ['| variant | s / iteration | speed-up | largest forwards (s) |', '|---|---|---|---|']
    for c in costs:
        top = sorted(c.forward.items(), key=lambda kv: -kv[1])[:3]
        lines.append(f'| {c.name} | {c.iteration:.2f} | {c.speedup:.2f}x | '
                     + ', '.join(f'{k} {v:.3f}' for k, v in top) + ' |')
    return lines


def to_json(costs: Sequence[VariantCost]) -> List[Dict]:
    return [asdict(c) for c in costs]


COST_FILE = 'iteration_cost.json'  # in the run directory: written by tools/benchmarks/label_efficiency_cost.py --out


def report_section(path: str) -> List[str]:
    """The report's section on the cost of an iteration, from the JSON that the cost tool wrote (empty if none)."""
    import json
    import os.path as osp
    if not osp.isfile(path):
        return []
    with open(path) as f:
        costs = [VariantCost(**c) for c in json.load(f)]
    return ['## Cost of an iteration', '',
            'One fine-tuning step (batch 2, forward + backward + AdamW, data loading excluded) of each model '
            'variant, measured side by side in one process (the variants take turns, so the machine load falls on '
            'all alike; `tools/benchmarks/label_efficiency_cost.py`). Each step cuts one more thing.', ''] + \
        to_markdown(costs) + ['']

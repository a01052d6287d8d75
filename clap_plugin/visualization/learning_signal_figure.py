"""The learning-signal figure: training curves of CLAP pre-training runs beside the results of the pre-training
probe (:mod:`clap_plugin.evaluation.pretrain_probe_run`), 2 x 3 panels.

``--runs``: NAME=WORK_DIR of ``tools/train.py`` runs (their ``*/vis_data/scalars.json``).
``--probes``: NAME=JSON[,JSON...] outputs of ``tools/benchmarks/probe_pretraining.py``; several files give a mean
and a spread.
"""
import argparse
import glob
import json
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .figure_io import save_figure

Runs = Dict[str, List[dict]]  # run name -> its logged training rows
Probes = Dict[str, List[dict]]  # probe name -> its probe results (one per seed)


def read_scalars(work_dir: str) -> List[dict]:
    """The training rows (those with ``loss_range``) of the last run logged under ``work_dir``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise SystemExit(f'error: no */vis_data/scalars.json under {work_dir!r}')
    rows = []
    with open(files[-1]) as f:
        for line in f:
            row = json.loads(line)
            if 'loss_range' in row:
                rows.append(row)
    return rows


def smooth(values: Sequence[float], k: int = 5) -> List[float]:
    """Trailing moving average over ``k`` values."""
    out = []
    for i in range(len(values)):
        window = values[max(0, i - k + 1):i + 1]
        out.append(sum(window) / len(window))
    return out


def _curve_panel(ax: Axes, runs: Runs, solid: Tuple[str, str, Callable], dashed: Tuple[str, str, Callable]) -> None:
    """Two curves per run: (metric, label suffix, transform of the values) drawn solid and dashed."""
    for name, rows in runs.items():
        it = [r['iter'] for r in rows]
        for (key, label, fn), style in ((solid, '-'), (dashed, '--')):
            ax.plot(it, fn([r[key] for r in rows]), style, label=f'{name}: {label}')


def training_panels(axes: Sequence[Axes], runs: Runs, num_prototypes: int) -> None:
    """Rendering losses, hard-assignment perplexities, swap agreement and prototype cosine over the iterations."""
    _curve_panel(axes[0], runs, ('loss_range', 'range (x w_L)', smooth),
                 ('loss_rgb', 'RGB x5', lambda v: smooth([x * 5 for x in v])))
    axes[0].set(title='Rendering losses fall (smoothed, normalised frame)', xlabel='iteration',
                ylabel='weighted loss')
    _curve_panel(axes[1], runs, ('proto_hard_ppl_lidar', 'LiDAR', smooth),
                 ('proto_hard_ppl_camera', 'camera', smooth))
    axes[1].axhline(num_prototypes / 4, color='grey', lw=0.8, ls=':', label='N_K / 4')
    axes[1].set(title='Hard-assignment perplexity per batch (no collapse)', xlabel='iteration', ylabel='perplexity')
    for name, rows in runs.items():
        it = [r['iter'] for r in rows]
        axes[2].plot(it, smooth([r['proto_swap_agree'] for r in rows], 10), label=f'{name}: agreement')
        axes[2].plot(it, [r['proto_cos_offdiag'] for r in rows], '-.', label=f'{name}: prototype cosine')
    axes[2].set(title='Swap agreement, prototype cosine (per batch)', xlabel='iteration', ylabel='share / cosine')
    for ax in axes:
        ax.legend(fontsize=8)


def _grouped_bars(ax: Axes, groups: Sequence[str], series: Dict[str, Tuple[np.ndarray, Optional[np.ndarray]]],
                  width: float) -> None:
    """One bar per (group, series), series side by side within a group; (means, spreads or None) per series."""
    n = len(series)
    for j, (label, (mean, spread)) in enumerate(series.items()):
        ax.bar(np.arange(len(groups)) + (j - (n - 1) / 2) * width, mean, width, yerr=spread, capsize=3, label=label)
    ax.legend(fontsize=8)


def _mean_spread(values: List[List[float]]) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Per column of a (runs, groups) table: the mean, and the std when there are several runs."""
    v = np.array(values)
    return v.mean(0), (v.std(0) if len(v) > 1 else None)


def probe_panels(axes: Sequence[Axes], probes: Probes) -> None:
    """Linear-probe AP per BEV, curvature enrichment per estimator, prototype figures, per probe name."""
    names = list(probes)

    def per_name(fn: Callable[[dict], float]) -> Tuple[np.ndarray, np.ndarray]:
        """Mean and std (0 for a single run) of ``fn`` over the runs of each probe name."""
        vals = [[fn(r) for r in probes[n]] for n in names]
        return np.array([np.mean(v) for v in vals]), np.array([np.std(v) if len(v) > 1 else 0.0 for v in vals])

    _grouped_bars(axes[0], names, {bev: per_name(lambda r, bev=bev: r['linear_probe_ap'][bev])
                                   for bev in ('lidar', 'camera', 'fused')}, 0.8 / 3)
    axes[0].set_xticks(np.arange(len(names)), names)
    axes[0].set(title='Frozen BEV linear probe: object cell AP on val', ylabel='average precision')
    ests = list(next(r for v in probes.values() for r in v)['curvature_enrichment'])
    _grouped_bars(axes[1], ests, {n: _mean_spread([[r['curvature_enrichment'][e] for e in ests] for r in probes[n]])
                                  for n in names}, 0.8 / len(names))
    axes[1].axhline(1.0, color='grey', lw=0.8, ls=':')
    axes[1].set_xticks(np.arange(len(ests)), ests)
    axes[1].set(title='Curvature weight share on box points / their share', ylabel='enrichment (1 = none)')
    keys = [('hard_ppl_lidar', 'hard ppl LiDAR / N_K'), ('hard_ppl_camera', 'hard ppl camera / N_K'),
            ('agree_over_chance', 'agreement / chance / 4'), ('proto_cos_offdiag', 'prototype cosine')]
    _grouped_bars(axes[2], keys, {n: (np.array([np.mean([_prototype_value(r['prototypes'], k) for r in probes[n]])
                                                for k, _ in keys]), None) for n in names}, 0.8 / len(names))
    axes[2].set_xticks(np.arange(len(keys)), [lbl for _, lbl in keys], rotation=20, fontsize=8)
    axes[2].set(title='Prototype probe (48 train samples, masking on)', ylabel='value')


def _prototype_value(p: dict, key: str) -> float:
    if key == 'agree_over_chance':
        return p['swap_agree'] / p['swap_chance'] / 4
    return p[key] / (p['num_prototypes'] if 'ppl' in key else 1)


def learning_signal_figure(runs: Runs, probes: Probes) -> Figure:
    """Training curves (top row) and probe results (bottom row)."""
    fig = Figure(figsize=(16, 9))
    axes = fig.subplots(2, 3)
    n_k = next(iter(probes.values()))[0].get('prototypes', {}).get('num_prototypes', 64)
    training_panels(axes[0], runs, n_k)
    probe_panels(axes[1], probes)
    fig.suptitle('CLAP learning signal, CPU-tiny pre-training on synthetic nuScenes')
    fig.tight_layout()
    return fig


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--runs', nargs='+', required=True, metavar='NAME=WORK_DIR')
    p.add_argument('--probes', nargs='+', required=True, metavar='NAME=JSON[,JSON]')
    p.add_argument('--out', required=True)
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    runs = {name: read_scalars(path) for name, path in (item.split('=', 1) for item in args.runs)}
    probes = {}
    for item in args.probes:
        name, paths = item.split('=', 1)
        probes[name] = []
        for path in paths.split(','):
            with open(path) as f:
                probes[name].append(json.load(f))
    save_figure(learning_signal_figure(runs, probes), args.out, dpi=80)
    print(f'wrote {args.out}')
    return 0

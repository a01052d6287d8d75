"""Aggregate the records of a label-efficiency run: tables (mean +- std over seeds, differences of means +- their
standard error), the ladder, the pretext figures, the timings, and the plot of mAP against the label fraction."""
import glob
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from .arms import ARMS
from .plan import RunPaths
from .setting import Setting


def load_records(paths: RunPaths) -> Dict[str, Dict]:
    out = {}
    for path in sorted(glob.glob(osp.join(paths.out, 'records', '*.json'))):
        with open(path) as f:
            out[osp.basename(path)[:-5]] = json.load(f)
    return out


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    if n == 0:
        return float('nan'), float('nan')
    m = sum(values) / n
    s = math.sqrt(sum((v - m)**2 for v in values) / (n - 1)) if n > 1 else 0.0
    return m, s


def diff_of_means(a: Sequence[float], b: Sequence[float]) -> Tuple[float, float]:
    """mean(a) - mean(b) and its standard error sqrt(s_a^2 / n_a + s_b^2 / n_b)."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return ma - mb, math.sqrt(sa**2 / max(len(a), 1) + sb**2 / max(len(b), 1))


def collect(records: Dict[str, Dict], measure: str) -> Dict[Tuple[str, float], Dict[str, List[float]]]:
    """(arm, fraction) -> {'mAP': [...], 'NDS': [...], 'seeds': [...]} for ``measure`` 'probe' or 'finetune'."""
    out: Dict[Tuple[str, float], Dict[str, List[float]]] = {}
    for rid, r in records.items():
        if measure == 'finetune' and not rid.startswith('finetune-'):
            continue
        if measure == 'probe' and not (rid.startswith('probe-') and 'fraction' in r):
            continue
        cell = out.setdefault((r['arm'], float(r['fraction'])), dict(mAP=[], NDS=[], seeds=[]))
        cell['mAP'].append(float(r['mAP']))
        cell['NDS'].append(float(r['NDS']))
        cell['seeds'].append(int(r['seed']))
    return out


def labelled_subsets(records: Dict[str, Dict]) -> Dict[Tuple[float, int], Dict]:
    """(fraction, seed) -> the object counts of that labelled subset (``labelled_objects`` of the fine-tune,
    probe and ladder records; the same subset in every record of a fraction and seed)."""
    out: Dict[Tuple[float, int], Dict] = {}
    for r in records.values():
        counts = r.get('labelled_objects') if isinstance(r, dict) else None
        if counts and 'distinct' in counts and 'fraction' in r and 'seed' in r:
            out.setdefault((float(r['fraction']), int(r['seed'])), counts)
    return dict(sorted(out.items()))


def objects_table(records: Dict[str, Dict]) -> List[str]:
    """Distinct annotated objects (and boxes) per class: the train split, each labelled subset, the val split.

    Distinct objects are nuScenes instances; boxes count an object once per keyframe it is annotated in."""
    data_objects = records.get('data', {}).get('objects', {})
    rows: List[Tuple[str, Dict]] = []
    train = data_objects.get('train', {}).get('all')
    if train:
        rows.append(('train split (all)', train))
    rows += [(f'labelled {f:g}, seed {s}', c) for (f, s), c in labelled_subsets(records).items()]
    val = data_objects.get('val', {}).get('all')
    if val:
        rows.append(('val split', val))
    if not rows:
        return []
    classes = list(rows[0][1]['distinct'])
    lines = ['## Labelled objects: distinct objects (boxes) per class', '',
             'Distinct = nuScenes instances; boxes count an object once per keyframe it is annotated in. Boxes '
             'as the fine-tune trains on them (valid, inside the range before augmentation).', '',
             '| subset | samples | ' + ' | '.join(classes) + ' | all |', '|' + '---|' * (3 + len(classes))]
    for name, c in rows:
        cells = [f'{c["distinct"].get(k, 0)} ({c["boxes"].get(k, 0)})' for k in classes]
        total = f'{sum(c["distinct"].values())} ({sum(c["boxes"].values())})'
        lines.append(f'| {name} | {c["samples"]} | ' + ' | '.join(cells) + f' | {total} |')
    errors = sorted({e for split in data_objects.values() for e in [split.get('error')] if e})
    return lines + [''] + [f'Object counts unavailable: {e}' for e in errors] + ([''] if errors else [])


def _fmt(m: float, s: float, n: int) -> str:
    return f'{m:.4f} ± {s:.4f} (n={n})' if n else '—'


def results_table(cells, arms: Sequence[str], fractions: Sequence[float]) -> List[str]:
    head = '| arm | ' + ' | '.join(f'mAP @ {f:g} | NDS @ {f:g}' for f in fractions) + ' |'
    lines = [head, '|' + '---|' * (1 + 2 * len(fractions))]
    for arm in arms:
        row = [ARMS[arm].label]
        for f in fractions:
            c = cells.get((arm, float(f)))
            for k in ('mAP', 'NDS'):
                row.append(_fmt(*mean_std(c[k]), len(c[k])) if c else '—')
        lines.append('| ' + ' | '.join(row) + ' |')
    return lines


def difference_table(cells, pairs: Sequence[Tuple[str, str]], fractions: Sequence[float]) -> List[str]:
    lines = ['| difference | ' + ' | '.join(f'ΔmAP @ {f:g} | ΔNDS @ {f:g}' for f in fractions) + ' |',
             '|' + '---|' * (1 + 2 * len(fractions))]
    for a, b in pairs:
        row = [f'{ARMS[a].label} − {ARMS[b].label}']
        for f in fractions:
            ca, cb = cells.get((a, float(f))), cells.get((b, float(f)))
            for k in ('mAP', 'NDS'):
                if ca and cb:
                    d, se = diff_of_means(ca[k], cb[k])
                    row.append(f'{d:+.4f} ± {se:.4f}')
                else:
                    row.append('—')
        lines.append('| ' + ' | '.join(row) + ' |')
    return lines


def plot(cells_by_measure: Dict[str, Dict], arms: Dict[str, Sequence[str]], fractions: Sequence[float],
         path: str) -> None:
    """mAP against label fraction with +- std error bars, one panel per measure; written atomically."""
    import matplotlib
    import matplotlib.ticker
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    measures = [m for m in ('probe', 'finetune') if cells_by_measure.get(m)]
    fig, axes = plt.subplots(1, len(measures), figsize=(6.5 * len(measures), 4.6), squeeze=False)
    titles = dict(probe='frozen encoders, bbox_head trained', finetune='full fine-tuning')
    for ax, m in zip(axes[0], measures):
        cells = cells_by_measure[m]
        for i, arm in enumerate(arms[m]):
            xs, ys, es = [], [], []
            for f in fractions:
                c = cells.get((arm, float(f)))
                if c:
                    mu, sd = mean_std(c['mAP'])
                    xs.append(100 * f)
                    ys.append(mu)
                    es.append(sd)
            if xs:
                ax.errorbar([x * (1 + 0.015 * (i - len(arms[m]) / 2)) for x in xs], ys, yerr=es, marker='o',
                            capsize=3, label=ARMS[arm].label, lw=2.2 if arm == 'clap' else 1.2)
        ax.set_xscale('log')
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks([100 * f for f in fractions])
        ax.set_xticklabels([f'{100 * f:g}%' for f in fractions])
        ax.set_xlabel('labelled share of the train samples')
        ax.set_ylabel('val mAP (NuScenesMetric), mean ± std over seeds')
        ax.set_title(titles[m])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle('Label efficiency of the pre-training arms (CPU-tiny BEVFusion, synthetic nuScenes)')
    fig.tight_layout()
    tmp = path + '.tmp.png'
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def render_markdown(setting: Setting, records: Dict[str, Dict], command: str, plot_name: Optional[str],
                    wall: Optional[Dict] = None) -> str:
    fr = [float(f) for f in setting.fractions]
    probe, fine = collect(records, 'probe'), collect(records, 'finetune')
    lines = ['# Label efficiency: which pre-training helps few-label fusion detection', '',
             'Made by `tools/benchmarks/label_efficiency.py` from the records of one run directory; '
             'regenerate it with the same command (finished jobs are not run again).', '', '```bash', command,
             '```', '']
    data = records.get('data', {})
    lines += ['## Setting', '', '```json', json.dumps(setting.to_json(), indent=None), '```', '',
              f'Data: `{data.get("data_root", "?")}` ({data.get("version", "?")}).', '']
    lines += objects_table(records)
    lad = records.get('ladder')
    if lad:
        curve = ', '.join(f'{c["step"]}: {c["mAP"]:.4f} / {c["NDS"]:.4f}' for c in lad['curve'])
        lines += ['## Protocol: the iteration count, from scratch only', '',
                  f'Scratch was fine-tuned at fraction {lad["fraction"]:g} (seed {lad["seed"]}) with val after '
                  f'every rung (iterations: mAP / NDS): {curve}.', '',
                  f'Chosen: **{lad["iterations"]} iterations** for every arm' +
                  (' — scratch was still improving at the longest rung, so the ladder is capped by the CPU budget '
                   'rather than converged.' if lad.get('at_cap') else '.'), '']
    if probe:
        lines += ['## Frozen-encoder probe (encoders frozen, only `bbox_head` trains)', '',
                  ('The head reads the cached fused BEV maps standardised per channel (a BatchNorm without affine, '
                   'probe version 2), so the probe does not depend on the scale of an arm\'s features.'
                   if setting.probe_version >= 2 else
                   'The head reads the raw cached fused BEV maps (probe version 1): an arm whose features are '
                   'larger or smaller gets a different effective learning rate.'), '']
        lines += results_table(probe, [a for a in setting.probe_arms], fr) + ['']
    if fine:
        lines += ['## Full fine-tuning', '']
        lines += results_table(fine, [a for a in setting.finetune_arms], fr) + ['']
    pairs = [('clap', 'scratch'), ('clap', 'unipad'), ('unipad', 'scratch'), ('joint_curvature', 'scratch')]
    for name, cells in (('frozen probe', probe), ('full fine-tuning', fine)):
        have = [p for p in pairs if any((p[0], f) in cells and (p[1], f) in cells for f in fr)]
        if have:
            lines += [f'### Differences of means ± standard error, {name}', '']
            lines += difference_table(cells, have, fr) + ['']
    if plot_name:
        lines += [f'![mAP against label fraction]({plot_name})', '']
    pretext = {k: v for k, v in records.items() if k.startswith('pretext-')}
    if pretext:
        lines += ['## Pretext: rendering on val samples, random init → pre-trained', '',
                  '| stage | ' + ' | '.join(['LiDAR AbsRel', 'LiDAR RMSE (m)', 'camera AbsRel', 'camera RMSE (m)',
                                               'RGB L1']) + ' |', '|---|---|---|---|---|---|']
        for k, r in sorted(pretext.items()):
            row = [r['stage']]
            for m in ('lidar_abs_rel', 'lidar_rmse', 'camera_abs_rel', 'camera_rmse', 'rgb_l1'):
                b, a = r['before'].get(m), r['after'].get(m)
                row.append(f'{b:.3f} → {a:.3f}' if b is not None and a is not None else '—')
            lines.append('| ' + ' | '.join(row) + ' |')
        lines.append('')
    lines += timing_lines(records, wall)
    return '\n'.join(lines) + '\n'


def timing_lines(records: Dict[str, Dict], wall: Optional[Dict]) -> List[str]:
    fine = [r for k, r in records.items() if k.startswith('finetune-') or k == 'ladder']
    probes = [r for k, r in records.items() if k.startswith('probe-') and 'fraction' in r]
    feats = [r for k, r in records.items() if k.startswith('probe-') and 'feature_seconds' in r]
    lines = ['## Time', '']
    if fine:
        it = mean_std([r['sec_per_iter'] for r in fine])[0]
        data = mean_std([r['data_sec'] for r in fine])[0]
        lines.append(f'- Full fine-tuning iteration (batch 2, images cached after the first read): {it:.2f} s, '
                     f'of which data loading {data:.3f} s (median of each run, mean over {len(fine)} runs).')
        if probes:
            pit = mean_std([r['sec_per_iter'] for r in probes])[0]
            lines.append(f'- Probe iteration on cached BEV maps: {pit:.3f} s, {it / pit:.0f}x cheaper than a full '
                         'iteration (same runs).')
    if feats:
        lines.append(f'- Feature caching per arm: {mean_std([r["feature_seconds"] for r in feats])[0]:.0f} s.')
    total = sum(r.get('seconds', 0.0) for r in records.values() if isinstance(r, dict))
    lines.append(f'- Sum of the job times: {total / 60:.1f} min.')
    if wall:
        lines.append(f'- Wall time of the invocations that produced the records: {wall["minutes"]:.1f} min in all '
                     f'({wall["invocations"]} invocation(s), {wall["workers"]} workers).')
    return lines + ['']

"""Aggregate the records of a label-efficiency run: tables (mean +- std over seeds, differences of means +- their
standard error), the ceiling and the ladder, the claims, the pretext figures, the timings, the plot of mAP
against the label fraction, and the machine-readable summary (:func:`summary_json`)."""
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from .arms import ARMS
from .claims import CLAIMS, EQUIVALENCE_MARGIN, claim_rows, claim_text
from .curves import SATURATION_GAIN, ladder_convergence, ladder_rungs
from .plan import CEILING, RunPaths
from .setting import Setting
from .stats import contrast, diff_of_means, mean_std

__all__ = ['collect', 'diff_of_means', 'load_records', 'mean_std', 'plot', 'render_markdown', 'summary_json']

# the differences of the tables and of the summary (a - b); the summary has each at every measure and fraction
DIFFERENCE_PAIRS: Tuple[Tuple[str, str], ...] = (
    ('clap', 'scratch'), ('clap', 'unipad'), ('unipad', 'scratch'), ('joint_curvature', 'scratch'),
    ('joint_uniform', 'scratch'), ('clap', 'joint_curvature'))
MEASURES = ('probe', 'finetune')


def load_records(paths: RunPaths) -> Dict[str, Dict]:
    out = {}
    for path in sorted(glob.glob(osp.join(paths.out, 'records', '*.json'))):
        with open(path) as f:
            out[osp.basename(path)[:-5]] = json.load(f)
    return out


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


def _fmt_contrast(value: float, se: Optional[float], paired: bool) -> str:
    """``+0.0123 ± 0.0045`` (``n/a`` without an SE, † when unpaired; no ``-0.0000``)."""
    text = f'{value:+.4f}'
    if float(text) == 0:
        text = f'{0.0:+.4f}'
    return f'{text} ± ' + ('n/a' if se is None else f'{se:.4f}' + ('' if paired else ' †'))


def _fmt_estimate(est) -> str:
    return '—' if est is None else _fmt_contrast(est.value, est.se, est.paired)


def difference_table(cells, pairs: Sequence[Tuple[str, str]], fractions: Sequence[float]) -> List[str]:
    """Differences of arm means ± SE (:func:`.stats.contrast`: paired by seed when both arms have the same seeds;
    † marks an unpaired SE; n/a: a single seed)."""
    lines = ['| difference | ' + ' | '.join(f'ΔmAP @ {f:g} | ΔNDS @ {f:g}' for f in fractions) + ' |',
             '|' + '---|' * (1 + 2 * len(fractions))]
    for a, b in pairs:
        row = [f'{ARMS[a].label} − {ARMS[b].label}']
        for f in fractions:
            for k in ('mAP', 'NDS'):
                row.append(_fmt_estimate(contrast(cells, ((a, 1.0), (b, -1.0)), f, key=k)))
        lines.append('| ' + ' | '.join(row) + ' |')
    return lines


def arm_color(arm: str) -> str:
    """The arm's colour in every panel (matplotlib's cycle, indexed by the arm's place in ``ARMS``)."""
    return f'C{list(ARMS).index(arm) % 10}'


def plot(cells_by_measure: Dict[str, Dict], arms: Dict[str, Sequence[str]], fractions: Sequence[float],
         path: str, models: str = 'CPU-tiny BEVFusion, synthetic nuScenes') -> None:
    """mAP against label fraction with +- std error bars, one panel per measure, an arm in the same colour in
    every panel; written atomically. ``models`` names the models and data in the title."""
    import matplotlib
    import matplotlib.ticker
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    measures = [m for m in ('probe', 'finetune') if cells_by_measure.get(m)]
    fig, axes = plt.subplots(1, len(measures), figsize=(6.5 * len(measures), 4.6), squeeze=False)
    titles = dict(probe='frozen encoders, bbox_head trained', finetune='full fine-tuning')
    for ax, m in zip(axes[0], measures):
        cells = cells_by_measure[m]
        # the panel's own fractions: a measure run at one fraction gets an axis around it, not the other panel's
        present = [float(f) for f in fractions if any(c[1] == float(f) for c in cells)] or list(fractions)
        for i, arm in enumerate(arms[m]):
            xs, ys, es = [], [], []
            for f in present:
                c = cells.get((arm, float(f)))
                if c:
                    mu, sd = mean_std(c['mAP'])
                    xs.append(100 * f)
                    ys.append(mu)
                    es.append(sd)
            if xs:
                ax.errorbar([x * (1 + 0.015 * (i - len(arms[m]) / 2)) for x in xs], ys, yerr=es, marker='o',
                            capsize=3, label=ARMS[arm].label, lw=2.2 if arm == 'clap' else 1.2,
                            color=arm_color(arm))
        ax.set_xscale('log')
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks([100 * f for f in present])
        ax.set_xticklabels([f'{100 * f:g}%' for f in present])
        lo, hi = 100 * min(present), 100 * max(present)
        ax.set_xlim(lo / 1.25, hi * 1.25)  # room for the arms' side-by-side offsets at either end
        ax.set_xlabel('labelled share of the train samples')
        ax.set_ylabel('val mAP (NuScenesMetric), mean ± std over seeds')
        ax.set_title(titles[m])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    # on two lines: a one-panel figure is narrower than the title on one line
    fig.suptitle(f'Label efficiency of the pre-training arms\n({models})')
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
    lines += ceiling_lines(records.get(CEILING))
    lad = records.get('ladder')
    if lad:
        unit = lad.get('unit', 'iterations')  # epochs under the paper protocol
        curve = ', '.join(f'{c["step"]}: {c["mAP"]:.4f} / {c["NDS"]:.4f}' for c in lad['curve'])
        cap = ('the fine-tune schedule\'s end' if unit == 'epochs' else 'the CPU budget')
        lines += [f'## Protocol: the {unit[:-1]} count, from scratch only', '',
                  f'Scratch was fine-tuned at fraction {lad["fraction"]:g} (seed {lad["seed"]}) with val after '
                  f'every rung ({unit}: mAP / NDS): {curve}.', '',
                  f'Chosen: **{lad["iterations"]} {unit}** for every arm' +
                  (f' — scratch was still improving at the longest rung, so the ladder is capped by {cap} '
                   'rather than converged.' if lad.get('at_cap') else '.'), '', ladder_sentence(lad), '']
    if probe:
        lines += ['## Frozen-encoder probe (encoders frozen, only `bbox_head` trains)', '',
                  ('The head reads the cached fused BEV maps standardised per channel (a BatchNorm without affine, '
                   'probe version 2), so the probe does not depend on the scale of an arm\'s features.'
                   if setting.probe_version >= 2 else
                   'The head reads the raw cached fused BEV maps (probe version 1): an arm whose features are '
                   'larger or smaller gets a different effective learning rate.'), '']
        lines += probe_length_lines(records.get('probe-scratch', {}).get('probe_length'))
        lines += results_table(probe, [a for a in setting.probe_arms], fr) + ['']
    if fine:
        lines += ['## Full fine-tuning', '']
        lines += results_table(fine, [a for a in setting.finetune_arms], fr) + ['']
    for name, cells in (('frozen probe', probe), ('full fine-tuning', fine)):
        have = [p for p in DIFFERENCE_PAIRS if any((p[0], f) in cells and (p[1], f) in cells for f in fr)]
        if have:
            lines += [f'### Differences of means ± standard error, {name}', '',
                      'SE paired by seed when both arms have the same seeds (a seed fixes the labelled subset of '
                      'every arm); † unpaired; n/a a single seed.', '']
            lines += difference_table(cells, have, fr) + ['']
    lines += claims_lines(dict(probe=probe, finetune=fine), fr)
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
    lines += timing_lines(records, wall, setting.paper)
    return '\n'.join(lines) + '\n'


def ceiling_lines(ceiling: Optional[Dict]) -> List[str]:
    """The ceiling run: its curve as a table and the 5 % rule's verdict."""
    if not ceiling:
        return []
    lines = ['## Ceiling: scratch with every train sample labelled', '',
             f'One fine-tune from scratch at fraction {ceiling["fraction"]:g} (seed {ceiling["seed"]}), val every '
             f'{ceiling["interval"]} iterations up to {ceiling["max_iters"]}, the fine-tune options of the ladder '
             '(constant lr after the warm-up, the setting\'s heatmap prior).', '',
             '| iterations | val mAP | val NDS |', '|---|---|---|']
    for c in ceiling['curve']:
        best = c['step'] == ceiling['best_iters']
        cells = [f'{c["mAP"]:.4f}', f'{c["NDS"]:.4f}']
        lines.append(f'| {c["step"]} | ' + ' | '.join(f'**{v}**' if best else v for v in cells) + ' |')
    lines += ['', f'Best: **mAP {ceiling["best_map"]:.4f}** (NDS {ceiling["best_nds"]:.4f}) at '
                  f'{ceiling["best_iters"]} iterations. ' + (
                      f'Saturated at {ceiling["saturated_at"]} iterations: the next validation improved val mAP by '
                      f'less than {SATURATION_GAIN:.0%} relative.' if ceiling['saturated'] else
                      f'Not saturated: every validation improved val mAP on the one before by at least '
                      f'{SATURATION_GAIN:.0%} relative (or started from 0); stopped by the cap, '
                      f'{ceiling["stopped_by"]}.'), '']
    return lines


def probe_length_lines(length: Optional[Dict]) -> List[str]:
    """How long every probe trained: the scratch probe's curve and the rung chosen on it (or the fixed length)."""
    if not length:
        return []
    if 'curve' not in length:
        return [f'Every probe trains its head for {length["iterations"]} iterations (a fixed length).', '']
    points = ', '.join(f'{c["step"]}: {c["mAP"]:.4f} / {c["NDS"]:.4f}' for c in length['curve'])
    verdict = ('saturated by the 5 % rule' if length.get('saturated') else
               f'not saturated by the 5 % rule (stopped by the cap, {length.get("stopped_by")})')
    return [f'Probe length from scratch only: its probe at fraction {length["fraction"]:g} (seed 0), scored after each '
            f'rung (head iterations: mAP / NDS): {points}. Chosen: **{length["iterations"]} head iterations** for '
            f'every arm; the curve is {verdict}.', '']


def ladder_sentence(ladder: Dict) -> str:
    """The 5 % rule on the ladder's last rung, from its curve (so also for a record made before the rule)."""
    c = ladder_convergence(ladder['curve'], ladder['ladder'], unit=ladder.get('unit', 'iterations'))
    if len(ladder['ladder']) < 2:
        return f'A single rung: the {SATURATION_GAIN:.0%} rule cannot test it; stopped by the {c.stopped_by}.'
    change = 'from mAP 0' if c.last_gain is None else f'by {c.last_gain:+.1%} relative'
    if c.saturated:
        last = max(int(p['step']) for p in ladder_rungs(ladder['curve'], ladder['ladder']))
        stopped = (f' The run stopped there, at {last} of up to {ladder["ladder"][-1]} '
                   f'{ladder.get("unit", "iterations")} (`SaturationStopHook`).' if last < ladder['ladder'][-1] else '')
        return (f'Converged by the {SATURATION_GAIN:.0%} rule: the last rung changed val mAP {change} on the rung '
                'before.' + stopped)
    return (f'Not converged by the {SATURATION_GAIN:.0%} rule: the last rung changed val mAP {change} on the rung '
            f'before; stopped by the {c.stopped_by}.')


def claims_lines(cells_by_measure: Dict[str, Dict], fractions: Sequence[float]) -> List[str]:
    """The claims table at the smallest label fraction, probe and full fine-tuning (:mod:`.claims`)."""
    if not fractions or not any(cells_by_measure.values()):
        return []
    f = min(fractions)
    names = dict(probe='frozen probe', finetune='full fine-tuning')
    lines = [f'## The paper\'s claims, at {f:g} of the labels', '',
             'Each claim as a contrast of mAP means that is positive when it holds, ± its SE (paired by seed when '
             'the arms share their seeds, † unpaired). Verdict: supported when the contrast is > 2 SE, '
             'contradicted when < −2 SE, else unresolved (also with a single seed); missing when an arm has no '
             f'records. "≈" holds within ±{EQUIVALENCE_MARGIN:g} mAP: supported when the 2-SE interval of the '
             'difference lies inside that margin, contradicted when it lies wholly outside it.', '',
             '| claim | measure | contrast ± SE | n | verdict |', '|---|---|---|---|---|']
    for measure in MEASURES:
        for r in claim_rows(cells_by_measure.get(measure, {}), measure, f):
            if r.diff is None:
                value = '— (no ' + ', '.join(ARMS[a].label for a in r.missing) + ')'
            else:
                value = _fmt_contrast(r.diff, r.se, r.paired)
            lines.append(f'| {claim_text(r.claim)} | {names[measure]} | {value} | {r.n or "—"} | {r.verdict} |')
    return lines + ['']


def _stats_cell(c: Optional[Dict]) -> Dict:
    if not c or not c['mAP']:
        return dict(map_mean=None, map_std=None, nds_mean=None, nds_std=None, n=0)
    (mm, ms), (nm, ns) = mean_std(c['mAP']), mean_std(c['NDS'])
    n = len(c['mAP'])
    return dict(map_mean=mm, map_std=ms if n > 1 else None, nds_mean=nm, nds_std=ns if n > 1 else None, n=n)


def summary_json(setting: Setting, records: Dict[str, Dict]) -> Dict:
    """The machine-readable summary of a run (``label_efficiency.json``), for comparing runs:

    * ``ceiling``: ``best_map``, ``best_iters``, ``curve``, ``saturated``, ``saturated_at`` (and ``best_nds``,
      ``stopped_by``, ``interval``, ``max_iters``); None without a ceiling record;
    * ``ladder``: the chosen iterations and the 5 % rule on the last rung; None without a ladder record;
    * ``probe`` / ``finetune``: ``{arm: {fraction: {map_mean, map_std, nds_mean, nds_std, n}}}`` (fractions as
      ``'%g'`` strings; stds None for a single seed, means None and n 0 without records);
    * ``differences``: ``{a, b, measure, fraction, diff, se, n, paired}`` (mAP, a - b) of
      :data:`DIFFERENCE_PAIRS` at every measure and fraction (diff None when an arm has no records);
    * ``claims``: ``{claim, measure, fraction, diff, se, verdict, n, paired, missing}`` (:mod:`.claims`) at
      every measure and fraction;
    * ``setting`` and ``rules`` (the saturation and verdict rules in words).
    """
    cells = {m: collect(records, m) for m in MEASURES}
    fractions = sorted({float(f) for f in setting.fractions} | {f for c in cells.values() for _, f in c})
    setting_arms = dict(probe=tuple(setting.probe_arms), finetune=tuple(setting.finetune_arms))
    out: Dict = dict(setting=setting.to_json())
    ceiling = records.get(CEILING)
    out['ceiling'] = None if not ceiling else {k: ceiling.get(k) for k in (
        'best_map', 'best_iters', 'curve', 'saturated', 'saturated_at', 'best_nds', 'stopped_by', 'interval',
        'max_iters')}
    lad = records.get('ladder')
    if lad:
        conv = ladder_convergence(lad['curve'], lad['ladder'], unit=lad.get('unit', 'iterations'))
        out['ladder'] = dict(iterations=lad['iterations'], unit=lad.get('unit', 'iterations'),
                             ladder=lad['ladder'], at_cap=lad.get('at_cap'),
                             curve=lad['curve'], saturated=conv.saturated, last_gain=conv.last_gain,
                             stopped_by=conv.stopped_by)
    else:
        out['ladder'] = None
    out['probe_length'] = records.get('probe-scratch', {}).get('probe_length')
    for m in MEASURES:
        arms = [a for a in ARMS if a in setting_arms[m] or any(arm == a for arm, _ in cells[m])]
        out[m] = {a: {f'{f:g}': _stats_cell(cells[m].get((a, f))) for f in fractions} for a in arms}
    out['differences'] = []
    for m in MEASURES:
        for f in fractions:
            for a, b in DIFFERENCE_PAIRS:
                est = contrast(cells[m], ((a, 1.0), (b, -1.0)), f)
                out['differences'].append(dict(
                    a=a, b=b, measure=m, fraction=f, diff=None if est is None else est.value,
                    se=None if est is None else est.se, n=0 if est is None else est.n,
                    paired=False if est is None else est.paired))
    out['claims'] = [r.to_json() for m in MEASURES for f in fractions for r in claim_rows(cells[m], m, f)]
    out['rules'] = dict(
        saturation=f'a curve has saturated at the first validation after which the next one improves val mAP by '
                   f'less than {SATURATION_GAIN:g} relative (never from mAP 0); the ladder has converged when '
                   'its last rung does so on the rung before',
        verdict='supported when the contrast > 2 SE, contradicted when < -2 SE, else unresolved (also without an '
                'SE, i.e. a single seed); missing when an arm has no records',
        equivalence=f'"~=" within {EQUIVALENCE_MARGIN:g} mAP: the verdict rule on margin - |diff|',
        se='paired by seed when every arm of the contrast has the same seeds (>= 2), else unpaired '
           '(sqrt(sum w^2 s^2 / n)); None with a single seed',
        claims=[c.name for c in CLAIMS])
    return out


def timing_lines(records: Dict[str, Dict], wall: Optional[Dict], paper: bool = False) -> List[str]:
    # a fine-tune read off the ladder's run is not a run of its own
    fine = [r for k, r in records.items()
            if (k.startswith('finetune-') and not r.get('from_ladder')) or k in ('ladder', CEILING)]
    probes = [r for k, r in records.items() if k.startswith('probe-') and 'fraction' in r]
    feats = [r for k, r in records.items() if k.startswith('probe-') and 'feature_seconds' in r]
    lines = ['## Time', '']
    if fine:
        it = mean_std([r['sec_per_iter'] for r in fine])[0]
        data = mean_std([r['data_sec'] for r in fine])[0]
        batch = 'batch 4 per GPU' if paper else 'batch 2, images cached after the first read'
        lines.append(f'- Full fine-tuning iteration ({batch}): {it:.2f} s, '
                     f'of which data loading {data:.3f} s (median of each run, mean over {len(fine)} runs).')
        if probes:
            pit = mean_std([r['sec_per_iter'] for r in probes])[0]
            lines.append(f'- Probe iteration on cached BEV maps: {pit:.3f} s, {it / pit:.0f}x cheaper than a full '
                         'iteration (same runs).')
    if feats:
        lines.append(f'- Feature caching per arm: {mean_std([r["feature_seconds"] for r in feats])[0]:.0f} s.')
    # one record per job: a probe's per-(fraction, seed) records are inside its job's time
    total = sum(r.get('seconds', 0.0) for k, r in records.items()
                if isinstance(r, dict) and not (k.startswith('probe-') and 'fraction' in r))
    lines.append(f'- Sum of the job times: {total / 60:.1f} min.')
    if wall:
        lines.append(f'- Wall time of the invocations that produced the records: {wall["minutes"]:.1f} min in all '
                     f'({wall["invocations"]} invocation(s), {wall["workers"]} workers).')
    return lines + ['']

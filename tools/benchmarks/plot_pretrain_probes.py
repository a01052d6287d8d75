"""Figures of the learning-signal probes: training curves of CLAP pre-training runs and the probe results.

    python tools/benchmarks/plot_pretrain_probes.py --runs short=WORK_DIR_A long=WORK_DIR_B \
        --probes random=R0.json,R1.json,R2.json short=A.json long=B.json --out tools/benchmarks/learning_signal.png

``--runs``: NAME=WORK_DIR of ``tools/train.py`` runs (their ``*/vis_data/scalars.json``).
``--probes``: NAME=JSON[,JSON...] outputs of ``probe_pretraining.py``; several files give a mean and a spread.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import tempfile


def read_scalars(work_dir: str) -> list:
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


def smooth(values, k=5):
    out = []
    for i in range(len(values)):
        window = values[max(0, i - k + 1):i + 1]
        out.append(sum(window) / len(window))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--runs', nargs='+', required=True, metavar='NAME=WORK_DIR')
    p.add_argument('--probes', nargs='+', required=True, metavar='NAME=JSON[,JSON]')
    p.add_argument('--out', required=True)
    args = p.parse_args(argv)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    runs = {}
    for item in args.runs:
        name, path = item.split('=', 1)
        runs[name] = read_scalars(path)
    probes = {}
    for item in args.probes:
        name, paths = item.split('=', 1)
        probes[name] = []
        for path in paths.split(','):
            with open(path) as f:
                probes[name].append(json.load(f))

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    ax = axes[0, 0]
    for name, rows in runs.items():
        it = [r['iter'] for r in rows]
        ax.plot(it, smooth([r['loss_range'] for r in rows]), label=f'{name}: range (x w_L)')
        ax.plot(it, smooth([r['loss_rgb'] * 5 for r in rows]), '--', label=f'{name}: RGB x5')
    ax.set(title='Rendering losses fall (smoothed, normalised frame)', xlabel='iteration', ylabel='weighted loss')
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for name, rows in runs.items():
        it = [r['iter'] for r in rows]
        ax.plot(it, smooth([r['proto_hard_ppl_lidar'] for r in rows]), label=f'{name}: LiDAR')
        ax.plot(it, smooth([r['proto_hard_ppl_camera'] for r in rows]), '--', label=f'{name}: camera')
    n_k = next(iter(probes.values()))[0].get('prototypes', {}).get('num_prototypes', 64)
    ax.axhline(n_k / 4, color='grey', lw=0.8, ls=':', label='N_K / 4')
    ax.set(title='Hard-assignment perplexity per batch (no collapse)', xlabel='iteration', ylabel='perplexity')
    ax.legend(fontsize=8)
    ax = axes[0, 2]
    for name, rows in runs.items():
        it = [r['iter'] for r in rows]
        ax.plot(it, smooth([r['proto_swap_agree'] for r in rows], 10), label=f'{name}: agreement')
        ax.plot(it, [r['proto_cos_offdiag'] for r in rows], '-.', label=f'{name}: prototype cosine')
    ax.set(title='Swap agreement, prototype cosine (per batch)', xlabel='iteration', ylabel='share / cosine')
    ax.legend(fontsize=8)

    names = list(probes)

    def stat(fn):
        means, stds = [], []
        for n in names:
            vals = [fn(r) for r in probes[n]]
            means.append(float(np.mean(vals)))
            stds.append(float(np.std(vals)) if len(vals) > 1 else 0.0)
        return np.array(means), np.array(stds)

    ax = axes[1, 0]
    width = 0.8 / 3
    for j, bev in enumerate(('lidar', 'camera', 'fused')):
        m, s = stat(lambda r: r['linear_probe_ap'][bev])
        ax.bar(np.arange(len(names)) + (j - 1) * width, m, width, yerr=s, capsize=3, label=bev)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set(title='Frozen BEV linear probe: object cell AP on val', ylabel='average precision')
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    ests = list(next(r for v in probes.values() for r in v)['curvature_enrichment'])
    width = 0.8 / len(names)
    for j, n in enumerate(names):
        m, s = stat(lambda r: 0.0)
        vals = np.array([[r['curvature_enrichment'][e] for e in ests] for r in probes[n]])
        ax.bar(np.arange(len(ests)) + (j - (len(names) - 1) / 2) * width, vals.mean(0), width,
               yerr=vals.std(0) if len(vals) > 1 else None, capsize=3, label=n)
    ax.axhline(1.0, color='grey', lw=0.8, ls=':')
    ax.set_xticks(np.arange(len(ests)), ests)
    ax.set(title='Curvature weight share on box points / their share', ylabel='enrichment (1 = none)')
    ax.legend(fontsize=8)
    ax = axes[1, 2]
    keys = [('hard_ppl_lidar', 'hard ppl LiDAR / N_K'), ('hard_ppl_camera', 'hard ppl camera / N_K'),
            ('agree_over_chance', 'agreement / chance / 4'), ('proto_cos_offdiag', 'prototype cosine')]
    width = 0.8 / len(names)
    for j, n in enumerate(names):
        vals = []
        for k, _ in keys:
            if k == 'agree_over_chance':
                v = [r['prototypes']['swap_agree'] / r['prototypes']['swap_chance'] / 4 for r in probes[n]]
            else:
                v = [r['prototypes'][k] / (r['prototypes']['num_prototypes'] if 'ppl' in k else 1) for r in probes[n]]
            vals.append(np.mean(v))
        ax.bar(np.arange(len(keys)) + (j - (len(names) - 1) / 2) * width, vals, width, label=n)
    ax.set_xticks(np.arange(len(keys)), [lbl for _, lbl in keys], rotation=20, fontsize=8)
    ax.set(title='Prototype probe (48 train samples, masking on)', ylabel='value')
    ax.legend(fontsize=8)
    fig.suptitle('CLAP learning signal, CPU-tiny pre-training on synthetic nuScenes')
    fig.tight_layout()
    folder = osp.dirname(osp.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.png')
    os.close(fd)
    fig.savefig(tmp, dpi=80)
    os.replace(tmp, args.out)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

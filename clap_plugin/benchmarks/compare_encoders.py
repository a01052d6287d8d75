"""Frozen-encoder probe of encoder exports, side by side: only the CPU-tiny detector's ``bbox_head`` trains.

Each ``--arm NAME=PATH`` (an empty PATH: random encoders; ``NAME=PATH@MOD,MOD``: only those top-level modules of
the export, e.g. ``clap_camera=clap.pth@img_backbone,img_neck,view_transform``, the rest random) is loaded into
configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py, its fused BEV maps are computed once for the train and val
samples (no augmentation), and a fresh head is trained per seed on ``--fraction`` of the train samples and
scored with NuScenesMetric on the val split. The head reads the maps standardised per channel (a BatchNorm
without affine, so the probe does not rank arms by their features' scale); ``--no-input-norm`` feeds the raw maps
(the probe before version 2). Prints one line per arm: the features' scale, then mAP and NDS, mean +- std over
the seeds.

The probe itself is :class:`~clap_plugin.benchmarks.label_efficiency.frozen_probe.FrozenProbe`; the
label-efficiency benchmark runs the same probe for every arm, label fraction and seed as resumable jobs with
records, where this command compares a few exports at one fraction and prints the result.
"""
import argparse
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Tuple

from clap_plugin.benchmarks.label_efficiency.arms import FINETUNE_CONFIG
from clap_plugin.benchmarks.label_efficiency.report import mean_std
from clap_plugin.benchmarks.label_efficiency.stats import noise_verdict


@dataclass
class ArmResult:
    """The probe of one encoder export: mAP and NDS as (mean, std) over the seeds, labelled samples, and the
    mAP of every seed (in the order of ``--seeds``)."""
    name: str
    map: Tuple[float, float]
    nds: Tuple[float, float]
    num_labelled: int
    seed_maps: Tuple[float, ...] = ()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data-root', required=True, help='nuScenes-format root with nuscenes_infos_{train,val}.pkl')
    p.add_argument('--arm', action='append', required=True, metavar='NAME=PATH',
                   help='an encoder export to probe (PATH empty: random encoders); repeat for several')
    p.add_argument('--config', default=FINETUNE_CONFIG, help='detector config (default: the CPU-tiny fine-tune)')
    p.add_argument('--version', help='nuScenes version of the info files (default: from the tables present)')
    p.add_argument('--fraction', type=float, default=1.0, help='share of the train samples with labels')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--iters', type=int, default=100, help='head training iterations (batch 2)')
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--no-input-norm', action='store_true',
                   help='feed the raw BEV maps to the head (scale-sensitive probe version 1)')
    return p.parse_args(argv)


@dataclass(frozen=True)
class ArmSpec:
    """One ``--arm``: its name, the export (None: random encoders) and the modules to load (None: all)."""
    name: str
    path: Optional[str] = None
    modules: Optional[Tuple[str, ...]] = None


def parse_arms(specs: List[str]) -> List[ArmSpec]:
    """``NAME=PATH[@MOD,MOD]`` -> :class:`ArmSpec`; exits on a malformed spec or a missing file."""
    arms = []
    for spec in specs:
        if '=' not in spec:
            raise SystemExit(f'error: --arm {spec!r}: expected NAME=PATH (PATH may be empty)')
        name, path = spec.split('=', 1)
        modules = None
        if '@' in path:
            path, mods = path.rsplit('@', 1)
            modules = tuple(m for m in mods.split(',') if m)
            if not path or not modules:
                raise SystemExit(f'error: --arm {spec!r}: expected NAME=PATH@MODULE[,MODULE...]')
        if path and not osp.isfile(path):
            raise SystemExit(f'error: --arm {name}: no file {path}')
        arms.append(ArmSpec(name, path or None, modules))
    return arms


def probe_arm(args: argparse.Namespace, arm: ArmSpec, root: str, version: str) -> ArmResult:
    """Probe one export with every seed; prints its feature scale and per-seed scores."""
    from clap_plugin.benchmarks.label_efficiency.frozen_probe import FrozenProbe
    name = arm.name
    probe = FrozenProbe(args.config, root, version, arm.path, modules=arm.modules)
    runs = [probe.run(args.fraction, s, args.iters, args.lr, normalize=not args.no_input_norm) for s in args.seeds]
    print(f'{name}: {probe.loaded} encoder tensors loaded; train features: per-channel std '
          f'{probe.scale.channel_std:.3g}, mean |f| {probe.scale.abs_mean:.3g}; ' + ', '.join(
              f'seed {s}: mAP {r["mAP"]:.4f} NDS {r["NDS"]:.4f}' for s, r in zip(args.seeds, runs)), flush=True)
    return ArmResult(name, mean_std([r['mAP'] for r in runs]), mean_std([r['NDS'] for r in runs]),
                     runs[0]['num_labelled'], tuple(r['mAP'] for r in runs))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    arms = parse_arms(args.arm)
    root = args.data_root if args.data_root.endswith('/') else args.data_root + '/'
    version = args.version or ('v1.0-trainval' if osp.isdir(osp.join(root, 'v1.0-trainval')) else 'v1.0-mini')
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import clap_plugin  # noqa: F401
    rows = [probe_arm(args, arm, root, version) for arm in arms]
    norm = 'raw maps (no input norm)' if args.no_input_norm else 'maps standardised per channel'
    print(f'\nfrozen-encoder probe: {len(args.seeds)} seeds, {rows[0].num_labelled} labelled samples, {args.iters} '
          f'head iterations, {norm}, val split of {root}')
    for r in rows:
        print(f'  {r.name:12s} mAP {r.map[0]:.4f} ± {r.map[1]:.4f}   NDS {r.nds[0]:.4f} ± {r.nds[1]:.4f}')
    for r in rows[1:]:  # each arm against the first, paired by seed
        print(f'  {r.name} - {rows[0].name}: {noise_verdict(list(r.seed_maps), list(rows[0].seed_maps))}')
    return 0

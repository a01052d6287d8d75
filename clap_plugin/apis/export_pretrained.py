"""The library side of tools/export_pretrained.py: write the encoder-only part of a (pre-training or
fine-tuning) checkpoint for ``load_from``.

    python tools/export_pretrained.py CKPT OUT [--bn-stats keep|recompute|drop]
    python tools/export_pretrained.py CKPT OUT --bn-stats recompute --config CONFIG --data-root DIR/
    python tools/export_pretrained.py CKPT OUT [--trained-modules pts_voxel_encoder,pts_middle_encoder | --all-modules]

Only the modules the method trained: a pre-trainer declares the encoder submodules it trains
(``trained_encoder_modules``, read through the config mmengine stores in the checkpoint's ``meta['cfg']``;
CLAP and detectors train all of them). The others are left out, so that at fine-tuning they keep the shared
initialisation (``init_cfg``, e.g. ImageNet weights of the image backbone) instead of being overwritten by
weights the method never trained. The tool prints which modules were trained and exported and which were left
out. ``--trained-modules`` overrides the declaration; ``--all-modules`` exports every encoder submodule (the
old behaviour). A checkpoint without a stored config (a bare state dict) exports every encoder present, and
the tool says so.

BN running statistics: pre-training fits them to 90%-masked inputs. ``--bn-stats recompute`` (default when
``--config`` is given) re-estimates them on unmasked inputs of the config's training set (``--bn-batches``
samples, forward only, no gradient); ``drop`` leaves them out so the detector starts from its initial ones;
``keep`` copies them as they are.

Keeps the state-dict entries of the BEVFusion encoders (``img_backbone``, ``img_neck``, ``view_transform``,
``pts_voxel_encoder``, ``pts_middle_encoder``, ``fusion_layer``, ``pts_backbone``, ``pts_neck``), with their
names unchanged and their per-module version metadata (which mmdet3d's spconv 2 loader reads to decide
whether to permute sparse-conv kernels), so the file loads into clap_plugin's fine-tune configs and into
mmdet3d's BEVFusion. Drops
everything else: rendering head, prototypes, projection heads, detection head, optimizer and scheduler state,
message hub. ``meta`` keeps only a note of the source. The output is written to a temporary name beside OUT
and renamed, so a crash never leaves a truncated OUT. Prints, per submodule, how many tensors and parameters
(elements) it carries.
"""
import argparse
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from clap_plugin.utils import state_dicts
from clap_plugin.utils.trained_modules import (
    ENCODER_PREFIXES,
    TrainedModulesError,
    parse_module_list,
    trained_modules_from_meta,
)


def load_state_dict(path: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """The model state dict (with ``_metadata``) and meta of a checkpoint file (mmengine format or bare)."""
    try:
        return state_dicts.load_state_dict(path)
    except state_dicts.CheckpointError as err:
        raise SystemExit(f'error: {err}') from err


def encoder_state_dict(state: Dict[str, torch.Tensor],
                       prefixes: Sequence[str] = ENCODER_PREFIXES) -> 'OrderedDict[str, torch.Tensor]':
    """Entries whose first name component is one of ``prefixes``, in their original order."""
    # keeps the per-module versions: spconv 2 modules (mmdet3d's loader) permute kernels saved without them
    return state_dicts.select(state, prefixes)


def summarize(state: Dict[str, torch.Tensor], prefixes: Sequence[str] = ENCODER_PREFIXES) -> List[tuple]:
    """(submodule, tensors, elements) per prefix, in ``prefixes`` order."""
    rows = []
    for prefix in prefixes:
        tensors = [v for k, v in state.items() if k.split('.', 1)[0] == prefix]
        rows.append((prefix, len(tensors), int(sum(t.numel() for t in tensors))))
    return rows


def recomputed_state(src: str, config: str, data_root: Optional[str], num_batches: int) -> 'OrderedDict':
    """The state dict of ``src`` with every BN layer's statistics re-estimated on unmasked inputs."""
    import numpy as np
    from mmdet3d.registry import DATASETS, MODELS
    from mmdet3d.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    register_all_modules()
    import clap_plugin  # noqa: F401
    from clap_plugin.utils.bn_statistics import recompute_bn_statistics

    if not osp.isfile(config):
        raise SystemExit(f'error: config {config!r} does not exist')
    cfg = Config.fromfile(config)
    state, _ = load_state_dict(src)
    torch.manual_seed(0)
    np.random.seed(0)
    if 'random_teacher_ablation' in cfg.model and not cfg.model.get('teacher_checkpoint'):
        # a distillation baseline refuses to build without a teacher file; its teacher plays no part in the
        # forward pass of the encoders here and its weights come from ``src`` below, so build it bare
        cfg.model.random_teacher_ablation = True
    model = MODELS.build(cfg.model)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if k.split('.', 1)[0] in ENCODER_PREFIXES]:
        raise SystemExit(f'error: {src!r} does not match the model of {config!r}: missing '
                         f'{missing[:5]}, unexpected {unexpected[:5]}')
    ds_cfg = cfg.train_dataloader.dataset
    if data_root:
        ds_cfg.data_root = data_root.rstrip('/') + '/'
    dataset = DATASETS.build(ds_cfg)
    n = len(dataset) if num_batches <= 0 else min(num_batches, len(dataset))

    def forward(i):
        data = model.data_preprocessor(pseudo_collate([dataset[i]]), training=True)
        metas = [s.metainfo for s in data['data_samples']]
        model.extract_bev(dict(points=list(data['inputs']['points']), imgs=data['inputs'].get('imgs')), metas)

    seen = recompute_bn_statistics(model, range(n), forward)
    print(f'BN statistics re-estimated on {seen} unmasked samples of {ds_cfg.data_root}{ds_cfg.ann_file}')
    return model.state_dict()


def decide_trained(meta: dict, trained_modules: Optional[Sequence[str]] = None,
                   all_modules: bool = False) -> Tuple[Tuple[str, ...], str]:
    """(encoder submodules to export, why): the override, else the method's declaration, else all."""
    if trained_modules is not None and all_modules:
        raise SystemExit('error: give either --trained-modules or --all-modules, not both')
    if all_modules:
        return ENCODER_PREFIXES, '--all-modules: every encoder submodule, trained or not'
    try:
        if trained_modules is not None:
            names = parse_module_list(','.join(trained_modules))
            return names, '--trained-modules'
        names, reason = trained_modules_from_meta(meta)
    except TrainedModulesError as err:
        raise SystemExit(f'error: {err} (pass --trained-modules or --all-modules)') from err
    if names is None:
        return ENCODER_PREFIXES, f'{reason}: trained modules unknown, every encoder submodule present is exported'
    return names, reason


def export(src: str, dst: str, bn_stats: str = 'keep', config: Optional[str] = None, data_root: Optional[str] = None,
           bn_batches: int = 64, trained_modules: Optional[Sequence[str]] = None,
           all_modules: bool = False) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Write the trained encoders of ``src`` to ``dst``; returns (kept state, dropped key names). Prints the
    encoder submodules exported (trained) and those left out (present but not trained by the method)."""
    kept, dropped, _ = export_with_report(src, dst, bn_stats, config, data_root, bn_batches, trained_modules,
                                          all_modules)
    return kept, dropped


def export_with_report(src: str, dst: str, bn_stats: str = 'keep', config: Optional[str] = None,
                       data_root: Optional[str] = None, bn_batches: int = 64,
                       trained_modules: Optional[Sequence[str]] = None, all_modules: bool = False):
    """:func:`export`, also returning the encoder submodules taken as trained (in ``ENCODER_PREFIXES`` order)."""
    from clap_plugin.utils.bn_statistics import drop_bn_statistics
    if bn_stats not in ('keep', 'recompute', 'drop'):
        raise SystemExit(f"error: --bn-stats must be keep, recompute or drop, got {bn_stats!r}")
    state, meta = load_state_dict(src)
    trained, reason = decide_trained(meta, trained_modules, all_modules)
    if bn_stats == 'recompute':
        if config is None:
            raise SystemExit('error: --bn-stats recompute needs --config (the pre-training config) and its data')
        state = recomputed_state(src, config, data_root, bn_batches)
    present = [p for p in ENCODER_PREFIXES if any(k.split('.', 1)[0] == p for k in state)]
    kept = encoder_state_dict(state, [p for p in ENCODER_PREFIXES if p in trained])
    left_out = [p for p in present if p not in trained]
    print(f'trained modules ({reason}): {[p for p in present if p in trained]}')
    print(f'left out (present, not trained by this method; the fine-tune keeps its own init): {left_out}')
    if bn_stats == 'drop':
        kept = drop_bn_statistics(kept)
    if not kept:
        tops = sorted({k.split('.', 1)[0] for k in state})
        raise SystemExit(f'error: {src!r} has none of the encoder submodules {list(trained)} '
                         f'(its top-level modules: {tops})')
    dropped = [k for k in state if k not in kept]
    out_meta = dict(exported_from=osp.abspath(src), encoder_prefixes=[p for p in ENCODER_PREFIXES if p in trained],
                    left_out=left_out, bn_stats=bn_stats)
    for key in ('epoch', 'iter', 'seed', 'experiment_name', 'mmengine_version'):
        if key in meta and isinstance(meta[key], (int, float, str)):
            out_meta[key] = meta[key]
    state_dicts.save_checkpoint(dst, kept, out_meta)
    return kept, dropped, [p for p in ENCODER_PREFIXES if p in trained]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export the encoders of a checkpoint for load_from')
    parser.add_argument('checkpoint', help='input checkpoint (CLAP pre-training or any BEVFusion model)')
    parser.add_argument('out', help='output file (.pth)')
    parser.add_argument('--bn-stats', choices=('keep', 'recompute', 'drop'), default=None,
                        help='BN running statistics: re-estimate on unmasked inputs (default with --config), '
                        'drop, or keep as pre-trained (default without --config)')
    parser.add_argument('--config', help='pre-training config, for --bn-stats recompute')
    parser.add_argument('--data-root', help='data root of that config (default: the config\'s)')
    parser.add_argument('--bn-batches', type=int, default=64,
                        help='samples for --bn-stats recompute (0: the whole training set)')
    parser.add_argument('--trained-modules', help='comma-separated encoder submodules to export (overrides the '
                        "method's declaration in the checkpoint's config)")
    parser.add_argument('--all-modules', action='store_true',
                        help='export every encoder submodule, also those the method did not train')
    args = parser.parse_args(argv)
    if args.bn_stats is None:
        args.bn_stats = 'recompute' if args.config else 'keep'
    return args


def main(argv: Optional[List[str]] = None) -> 'OrderedDict[str, torch.Tensor]':
    args = parse_args(argv)
    if osp.abspath(args.checkpoint) == osp.abspath(args.out):
        raise SystemExit('error: OUT must differ from CKPT')
    trained = args.trained_modules.split(',') if args.trained_modules is not None else None
    kept, dropped, exported = export_with_report(args.checkpoint, args.out, args.bn_stats, args.config,
                                                 args.data_root, args.bn_batches, trained, args.all_modules)
    print(f'{"submodule":<20} {"tensors":>8} {"parameters":>12}')
    for prefix, n_tensors, n_elems in summarize(kept, exported):
        print(f'{prefix:<20} {n_tensors:>8d} {n_elems:>12,d}')
    total = sum(v.numel() for v in kept.values())
    dropped_tops = sorted({k.split('.', 1)[0] for k in dropped})
    print(f'{"total":<20} {len(kept):>8d} {total:>12,d}')
    print(f'dropped {len(dropped)} tensors of {dropped_tops} and the optimizer / scheduler / message-hub state')
    print(f'BN running statistics: {args.bn_stats}')
    print(f'wrote {args.out}')
    return kept

"""Write the encoder-only part of a (pre-training or fine-tuning) checkpoint for ``load_from``.

    python tools/export_pretrained.py CKPT OUT

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
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch

ENCODER_PREFIXES = ('img_backbone', 'img_neck', 'view_transform', 'pts_voxel_encoder', 'pts_middle_encoder',
                    'fusion_layer', 'pts_backbone', 'pts_neck')
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from clap_plugin.utils import state_dicts  # noqa: E402


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


def export(src: str, dst: str) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Write the encoder-only checkpoint of ``src`` to ``dst``; returns (kept state, dropped key names)."""
    state, meta = load_state_dict(src)
    kept = encoder_state_dict(state)
    if not kept:
        tops = sorted({k.split('.', 1)[0] for k in state})
        raise SystemExit(f'error: {src!r} has none of the encoder submodules {list(ENCODER_PREFIXES)} '
                         f'(its top-level modules: {tops})')
    dropped = [k for k in state if k not in kept]
    out_meta = dict(exported_from=osp.abspath(src), encoder_prefixes=list(ENCODER_PREFIXES))
    for key in ('epoch', 'iter', 'seed', 'experiment_name', 'mmengine_version'):
        if key in meta and isinstance(meta[key], (int, float, str)):
            out_meta[key] = meta[key]
    state_dicts.save_checkpoint(dst, kept, out_meta)
    return kept, dropped


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export the encoders of a checkpoint for load_from')
    parser.add_argument('checkpoint', help='input checkpoint (CLAP pre-training or any BEVFusion model)')
    parser.add_argument('out', help='output file (.pth)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> 'OrderedDict[str, torch.Tensor]':
    args = parse_args(argv)
    if osp.abspath(args.checkpoint) == osp.abspath(args.out):
        raise SystemExit('error: OUT must differ from CKPT')
    kept, dropped = export(args.checkpoint, args.out)
    print(f'{"submodule":<20} {"tensors":>8} {"parameters":>12}')
    for prefix, n_tensors, n_elems in summarize(kept):
        print(f'{prefix:<20} {n_tensors:>8d} {n_elems:>12,d}')
    total = sum(v.numel() for v in kept.values())
    dropped_tops = sorted({k.split('.', 1)[0] for k in dropped})
    print(f'{"total":<20} {len(kept):>8d} {total:>12,d}')
    print(f'dropped {len(dropped)} tensors of {dropped_tops} and the optimizer / scheduler / message-hub state')
    print(f'wrote {args.out}')
    return kept


if __name__ == '__main__':
    main(sys.argv[1:])

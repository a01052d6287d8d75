"""Merge two separately pre-trained checkpoints (UniPAD-style): camera encoders from one, LiDAR encoders and
the BEV backbone/neck from the other, into one encoder-only checkpoint for ``load_from``.

    python tools/merge_pretrained.py LIDAR_CKPT CAMERA_CKPT OUT

``fusion_layer`` is left out (neither half trained it); it starts from its initialisation when fine-tuning.
The state dict's ``_metadata`` (per-module versions) is kept for the tensors taken from each half: without it
mmdet3d's spconv 2 loader would permute the sparse-conv kernels of ``pts_middle_encoder`` on load. The output
is written to a temporary name and renamed when complete.
"""
import argparse
import os.path as osp
from collections import OrderedDict
from typing import Dict, Tuple

import torch

from ..utils.state_dicts import CheckpointError, combine, count_by_module, load_state_dict, save_checkpoint, select
from ..utils.trained_modules import CAMERA_PREFIXES, LIDAR_PREFIXES


def merge(lidar: Dict[str, torch.Tensor], camera: Dict[str, torch.Tensor]) -> Tuple[OrderedDict, Dict[str, int]]:
    parts = []
    for source, prefixes, name in ((lidar, LIDAR_PREFIXES, 'LiDAR'), (camera, CAMERA_PREFIXES, 'camera')):
        picked = select(source, prefixes)
        if not picked:
            raise CheckpointError(f'the {name} checkpoint has no {"/".join(prefixes)} weights')
        parts.append(picked)
    out = combine(parts)
    return out, {top: n for top, (n, _) in count_by_module(out).items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('lidar_ckpt')
    p.add_argument('camera_ckpt')
    p.add_argument('out')
    args = p.parse_args(argv)
    try:
        lidar, _ = load_state_dict(args.lidar_ckpt)
        camera, _ = load_state_dict(args.camera_ckpt)
        merged, counts = merge(lidar, camera)
    except CheckpointError as err:
        raise SystemExit(f'error: {err}')
    save_checkpoint(args.out, merged, dict(merged_from=[osp.abspath(args.lidar_ckpt),
                                                        osp.abspath(args.camera_ckpt)]))
    for top, n in counts.items():
        print(f'{top:20s} {n:5d} tensors')
    kept = getattr(merged, '_metadata', None) is not None
    print(f'module versions (_metadata): {"kept" if kept else "none in the inputs"}')
    print(f'wrote {args.out}')
    return 0


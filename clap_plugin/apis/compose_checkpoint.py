"""Compose the start checkpoints of mmdet3d's two-stage BEVFusion recipe from pre-trained encoders.

mmdet3d trains BEVFusion in two stages: a LiDAR-only detector first, then the lidar-cam detector starting
from it. With pre-trained encoders (a ``tools/export_pretrained.py`` export of CLAP or a baseline, or a
``tools/merge_pretrained.py`` merge):

    # stage 1: the LiDAR-only detector starts from the pre-trained LiDAR encoders and BEV backbone / neck
    python tools/compose_checkpoint.py lidar-stage PRETRAINED stage1_init.pth
    python tools/train.py configs/bevfusion_lidar_finetune_nus.py --cfg-options load_from=stage1_init.pth
    # stage 2: the lidar-cam detector starts from the stage-1 detector plus the pre-trained camera encoders
    python tools/compose_checkpoint.py lidar-cam-stage work_dirs/bevfusion_lidar_finetune_nus/epoch_20.pth \
        PRETRAINED stage2_init.pth
    python tools/train.py configs/bevfusion_lidar-cam_finetune_nus.py --cfg-options load_from=stage2_init.pth

``lidar-stage`` keeps ``pts_voxel_encoder``, ``pts_middle_encoder``, ``pts_backbone`` and ``pts_neck``.
``lidar-cam-stage`` keeps every tensor of the stage-1 detector (LiDAR encoders, BEV backbone / neck,
``bbox_head``) and adds ``img_backbone``, ``img_neck`` and ``view_transform`` of PRETRAINED; ``fusion_layer``
starts from its initialisation, as in mmdet3d's recipe, unless ``--fusion-layer`` takes PRETRAINED's.
Optimizer and scheduler state are dropped. The state dict's ``_metadata`` (module versions, which tell mmdet3d's
spconv 2 loader not to permute the sparse-conv kernels) is kept for every tensor. The output is written to a
temporary name and renamed; the tool prints the tensors taken from each input.
"""
import argparse
import os.path as osp
from typing import List, Optional, Sequence

from ..utils.state_dicts import (
    CheckpointError,
    combine,
    count_by_module,
    load_state_dict,
    save_checkpoint,
    select,
    top_module,
)
from ..utils.trained_modules import CAMERA_PREFIXES, LIDAR_PREFIXES

STAGE1_REQUIRED = ('pts_middle_encoder', 'bbox_head')


def lidar_stage(pretrained: str):
    state, _ = load_state_dict(pretrained)
    out = select(state, LIDAR_PREFIXES)
    if 'pts_middle_encoder' not in {top_module(k) for k in out}:
        raise CheckpointError(f'{pretrained!r} has no pts_middle_encoder weights (its top-level modules: '
                              f'{sorted({top_module(k) for k in state})})')
    return out, [(pretrained, out)]


def lidar_cam_stage(stage1: str, pretrained: str, fusion_layer: bool = False):
    detector, _ = load_state_dict(stage1)
    tops = {top_module(k) for k in detector}
    missing = [p for p in STAGE1_REQUIRED if p not in tops]
    if missing:
        raise CheckpointError(f'{stage1!r} is not a LiDAR-only detector checkpoint: no {missing} weights (its '
                              f'top-level modules: {sorted(tops)})')
    camera_prefixes = CAMERA_PREFIXES + (('fusion_layer', ) if fusion_layer else ())
    state, _ = load_state_dict(pretrained)
    camera = select(state, camera_prefixes)
    absent = [p for p in camera_prefixes if p not in {top_module(k) for k in camera}]
    if absent:
        raise CheckpointError(f'{pretrained!r} has no {absent} weights (its top-level modules: '
                              f'{sorted({top_module(k) for k in state})})')
    # a camera module in the stage-1 file (it should have none) is replaced by the pre-trained one
    base = select(detector, sorted(tops - set(camera_prefixes)))
    return combine([base, camera]), [(stage1, base), (pretrained, camera)]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='stage', required=True)
    s1 = sub.add_parser('lidar-stage', help='LiDAR encoders + BEV backbone/neck of PRETRAINED (stage 1)')
    s1.add_argument('pretrained')
    s1.add_argument('out')
    s2 = sub.add_parser('lidar-cam-stage', help='stage-1 detector + camera encoders of PRETRAINED (stage 2)')
    s2.add_argument('stage1', help='the trained LiDAR-only detector checkpoint')
    s2.add_argument('pretrained')
    s2.add_argument('out')
    s2.add_argument('--fusion-layer', action='store_true',
                    help="also take PRETRAINED's fusion_layer (default: start it from its initialisation)")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None):
    args = parse_args(argv)
    inputs = [args.pretrained] + ([args.stage1] if args.stage == 'lidar-cam-stage' else [])
    if any(osp.abspath(args.out) == osp.abspath(i) for i in inputs):
        raise SystemExit('error: OUT must differ from the input checkpoints')
    try:
        if args.stage == 'lidar-stage':
            out, parts = lidar_stage(args.pretrained)
        else:
            out, parts = lidar_cam_stage(args.stage1, args.pretrained, args.fusion_layer)
    except CheckpointError as err:
        raise SystemExit(f'error: {err}')
    save_checkpoint(args.out, out, dict(composed=args.stage, sources=[osp.abspath(p) for p, _ in parts]))
    for path, part in parts:
        for top, (n, elems) in count_by_module(part).items():
            print(f'{top:<20} {n:>6d} tensors {elems:>12,d} parameters  from {path}')
    versions = 'kept' if getattr(out, '_metadata', None) is not None else 'none in the inputs'
    print(f'total {len(out)} tensors; module versions (_metadata): {versions}')
    print(f'wrote {args.out}')
    return out


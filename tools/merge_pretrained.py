"""Merge two separately pre-trained checkpoints (UniPAD-style): camera encoders from one, LiDAR encoders and
the BEV backbone/neck from the other, into one encoder-only checkpoint for ``load_from``.

    python tools/merge_pretrained.py LIDAR_CKPT CAMERA_CKPT OUT

``fusion_layer`` is left out (neither half trained it); it starts from its initialisation when fine-tuning.
The output is written to a temporary name and renamed when complete.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
from collections import OrderedDict
from typing import Dict, Tuple

import torch

LIDAR_PREFIXES = ('pts_voxel_encoder.', 'pts_middle_encoder.', 'pts_backbone.', 'pts_neck.')
CAMERA_PREFIXES = ('img_backbone.', 'img_neck.', 'view_transform.')


def _state_dict(path: str) -> Dict[str, torch.Tensor]:
    from clap_plugin.utils.checkpoint import allow_mmengine_checkpoints
    allow_mmengine_checkpoints()
    if not osp.isfile(path):
        raise SystemExit(f'error: checkpoint {path!r} does not exist')
    ckpt = torch.load(path, map_location='cpu')
    sd = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise SystemExit(f'error: {path!r} holds no state dict')
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()}


def merge(lidar: Dict[str, torch.Tensor], camera: Dict[str, torch.Tensor]) -> Tuple[OrderedDict, Dict[str, int]]:
    out: OrderedDict = OrderedDict()
    counts: Dict[str, int] = {}
    for source, prefixes, name in ((lidar, LIDAR_PREFIXES, 'LiDAR'), (camera, CAMERA_PREFIXES, 'camera')):
        picked = {k: v for k, v in source.items() if k.startswith(prefixes)}
        if not picked:
            raise SystemExit(f'error: the {name} checkpoint has no {"/".join(p[:-1] for p in prefixes)} weights')
        out.update(picked)
        for k in picked:
            top = k.split('.', 1)[0]
            counts[top] = counts.get(top, 0) + 1
    return out, counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('lidar_ckpt')
    p.add_argument('camera_ckpt')
    p.add_argument('out')
    args = p.parse_args(argv)
    merged, counts = merge(_state_dict(args.lidar_ckpt), _state_dict(args.camera_ckpt))
    folder = osp.dirname(osp.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    os.close(fd)
    try:
        torch.save(dict(state_dict=merged, meta=dict(merged_from=[args.lidar_ckpt, args.camera_ckpt])), tmp)
        os.replace(tmp, args.out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    for top, n in sorted(counts.items()):
        print(f'{top:20s} {n:5d} tensors')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Generate a synthetic nuScenes-format dataset (tables, LiDAR sweeps, six camera images, annotations); the
command line of ``tools/create_synthetic_nuscenes.py`` over :mod:`clap_plugin.synthetic`.
"""
import argparse
import sys
from typing import List, Optional

from ..synthetic import GeneratorConfig, SyntheticDataError, generate


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--root', required=True, help='output data root (created; must be empty unless --overwrite)')
    p.add_argument('--version', default='v1.0-mini', help='v1.0-mini or v1.0-trainval (official scene names)')
    p.add_argument('--scenes', type=int, default=2, help='number of scenes')
    p.add_argument('--val-scenes', type=int,
                   help='how many of the scenes are official val scenes (default: every other scene)')
    p.add_argument('--samples-per-scene', type=int, default=6, help='keyframes (2 Hz) per scene, >= 2')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--sweeps', type=int, default=2, help='LiDAR sweeps (20 Hz) before each keyframe, 0..9')
    p.add_argument('--image-size', type=int, nargs=2, default=(1600, 900), metavar=('W', 'H'),
                   help="camera image size; mmdet3d's converter expects 1600 900")
    p.add_argument('--objects-per-class', type=int, nargs=2, default=(1, 2), metavar=('MIN', 'MAX'),
                   help='annotated objects per detection class and scene')
    p.add_argument('--save-gt-maps', action='store_true',
                   help='also write per-pixel / per-point object ids and depths to synthetic_gt/ (for checks)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing, non-empty root')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Generate the set; 2 (and one error line) on bad arguments."""
    args = parse_args(argv)
    cfg = GeneratorConfig(root=args.root, version=args.version, num_scenes=args.scenes,
                          samples_per_scene=args.samples_per_scene, seed=args.seed, sweeps=args.sweeps,
                          image_size=tuple(args.image_size), objects_per_class=tuple(args.objects_per_class),
                          val_scenes=args.val_scenes,
                          save_gt_maps=args.save_gt_maps, overwrite=args.overwrite)
    try:
        root, seconds = generate(cfg, progress=not args.no_progress)
    except SyntheticDataError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'\nwrote {args.scenes} scenes x {args.samples_per_scene} samples to {root} in {seconds:.1f} s')
    return 0


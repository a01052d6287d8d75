"""Create mmdet3d 1.4 (v2 format) info files and the GT-sampling database for a nuScenes tree, real or synthetic.

Example::

    python tools/create_data.py nuscenes --root-path data/nuscenes --out-dir data/nuscenes \
        --extra-tag nuscenes --version v1.0-mini [--workers 8] [--max-sweeps 10] [--no-dbinfos]

Writes ``{tag}_infos_{train,val}.pkl`` (``_test`` for v1.0-test) and, for the training split, the
GT-sampling database of mmdet3d's ``ObjectSample``: ``{tag}_gt_database/`` (the points inside each box) and
``{tag}_dbinfos_train.pkl``. Only the files the converter and the configs read are checked first (keyframes of
LIDAR_TOP and the cameras, and the LiDAR sweeps when ``--max-sweeps`` > 0), so a download without camera sweeps
converts. ``--workers`` processes convert the samples (and threads check the files); progress goes to stderr.
"""
import argparse
import sys

from ..datasets.nuscenes_converter import create_nuscenes_dbinfos, create_nuscenes_infos
from ..datasets.nuscenes_validation import NuScenesDataError


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Data converter (mmdet3d v2 info pkls, GT-sampling database)')
    p.add_argument('dataset', choices=['nuscenes'], help='name of the dataset')
    p.add_argument('--root-path', required=True, help='nuScenes data root (holds v1.0-*/, samples/, sweeps/)')
    p.add_argument('--out-dir', required=True, help='where the info pkls are written')
    p.add_argument('--extra-tag', default='nuscenes', help='prefix of the info file names')
    p.add_argument('--version', default='v1.0-trainval', help='v1.0-trainval, v1.0-mini or v1.0-test')
    p.add_argument('--max-sweeps', type=int, default=10, help='LiDAR sweeps recorded per sample (0: none)')
    p.add_argument('--workers', type=int, default=1, help='processes converting samples / threads checking files')
    p.add_argument('--no-dbinfos', action='store_true',
                   help='skip the GT-sampling database (configs with ObjectSample need it)')
    p.add_argument('--quiet', action='store_true', help='no progress lines')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.workers < 1:
        print(f'error: --workers must be >= 1, got {args.workers}', file=sys.stderr)
        return 2
    try:
        paths = create_nuscenes_infos(args.root_path, args.out_dir, info_prefix=args.extra_tag,
                                      version=args.version, max_sweeps=args.max_sweeps, workers=args.workers,
                                      progress=not args.quiet)
        for p in paths:
            print(f'wrote {p}')
        train = [p for p in paths if p.endswith('_infos_train.pkl')]
        if train and not args.no_dbinfos:
            db_info, db_dir, counts = create_nuscenes_dbinfos(args.root_path, train[0], args.out_dir,
                                                              info_prefix=args.extra_tag)
            print(f'wrote {db_info} and {db_dir}/ (' + ', '.join(f'{k}: {v}' for k, v in counts.items()) + ')')
    except NuScenesDataError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 0


"""Create mmdet3d 1.4 (v2 format) info files and the GT-sampling database for a nuScenes tree, real or synthetic;
or only check a tree.

Example::

    python tools/create_data.py nuscenes --root-path data/nuscenes --out-dir data/nuscenes \
        --extra-tag nuscenes --version v1.0-mini [--workers 8] [--max-sweeps 10] [--no-dbinfos] [--check full]
    python tools/create_data.py nuscenes --root-path data/nuscenes --version v1.0-mini --check-only

Writes ``{tag}_infos_{train,val}.pkl`` (``_test`` for v1.0-test) and, for the training split, the
GT-sampling database of mmdet3d's ``ObjectSample``: ``{tag}_gt_database/`` (the points inside each box) and
``{tag}_dbinfos_train.pkl``. Only the files the converter and the configs read are checked first (keyframes of
LIDAR_TOP and the cameras, and the LiDAR sweeps when ``--max-sweeps`` > 0), so a download without camera sweeps
converts. ``--workers`` processes convert the samples (and threads check the files); progress goes to stderr.

``--check`` sets how those files are checked before anything is written: ``files`` (the default when
converting) looks at existence, sizes and headers (seconds); ``full`` reads every file whole, decodes every
image completely and strictly (a JPEG with an intact header and a garbage body is caught; OpenCV would decode
noise from it) and checks the LiDAR values are finite (minutes on v1.0-trainval with ``--workers``). Any bad
file: all of them are listed (sensor, file, sample token, sample_data token, reason), no info file is written,
exit status 2. ``--check-only`` runs the check (``full`` unless ``--check`` says otherwise) and writes nothing;
with ``--out-dir`` it also reads the GT-sampling database there, if any.
"""
import argparse
import os.path as osp
import sys

from ..datasets.nuscenes_converter import create_nuscenes_dbinfos, create_nuscenes_infos
from ..datasets.nuscenes_validation import CHECK_LEVELS, NuScenesDataError, check_gt_database, validate_nuscenes


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Data converter (mmdet3d v2 info pkls, GT-sampling database)')
    p.add_argument('dataset', choices=['nuscenes'], help='name of the dataset')
    p.add_argument('--root-path', required=True, help='nuScenes data root (holds v1.0-*/, samples/, sweeps/)')
    p.add_argument('--out-dir', help='where the info pkls are written (required unless --check-only)')
    p.add_argument('--extra-tag', default='nuscenes', help='prefix of the info file names')
    p.add_argument('--version', default='v1.0-trainval', help='v1.0-trainval, v1.0-mini or v1.0-test')
    p.add_argument('--max-sweeps', type=int, default=10, help='LiDAR sweeps recorded per sample (0: none)')
    p.add_argument('--workers', type=int, default=1, help='processes converting samples / threads checking files')
    p.add_argument('--no-dbinfos', action='store_true',
                   help='skip the GT-sampling database (configs with ObjectSample need it)')
    p.add_argument('--check', choices=CHECK_LEVELS, default=None,
                   help='how the sensor files are checked before anything is written: "files" (existence, sizes, '
                   'headers; the default when converting) or "full" (every file read whole, every image decoded '
                   'strictly; the default of --check-only)')
    p.add_argument('--check-only', action='store_true',
                   help='only check the tree (and the GT-sampling database in --out-dir, if any); write nothing')
    p.add_argument('--quiet', action='store_true', help='no progress lines')
    return p.parse_args(argv)


def _check_only(args: argparse.Namespace, level: str) -> None:
    validate_nuscenes(args.root_path, args.version, max_sweeps=args.max_sweeps, workers=args.workers,
                      progress=not args.quiet, level=level)
    print(f'{args.root_path} ({args.version}): every sensor file passed the {level} check')
    db_info = osp.join(args.out_dir, f'{args.extra_tag}_dbinfos_train.pkl') if args.out_dir else None
    if db_info and osp.isfile(db_info):
        n = check_gt_database(db_info, workers=args.workers, progress=not args.quiet)
        print(f'{db_info}: all {n} GT-database files passed')


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.workers < 1:
        print(f'error: --workers must be >= 1, got {args.workers}', file=sys.stderr)
        return 2
    if args.out_dir is None and not args.check_only:
        print('error: --out-dir is required (unless --check-only)', file=sys.stderr)
        return 2
    level = args.check or ('full' if args.check_only else 'files')
    paths = []
    try:
        if args.check_only:
            _check_only(args, level)
            return 0
        if level == 'full':  # before anything is written; the converter's own cheap check follows
            validate_nuscenes(args.root_path, args.version, max_sweeps=args.max_sweeps, workers=args.workers,
                              progress=not args.quiet, level='full')
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
        if not args.check_only and not paths:
            print('error: no info file was written', file=sys.stderr)
        return 2
    return 0

"""Create mmdet3d 1.4 (v2 format) info files for a nuScenes tree, real or synthetic.

Example::

    python tools/create_data.py nuscenes --root-path data/nuscenes --out-dir data/nuscenes \
        --extra-tag nuscenes --version v1.0-mini
"""
import argparse
import sys

from clap_plugin.datasets.nuscenes_converter import create_nuscenes_infos
from clap_plugin.datasets.nuscenes_validation import NuScenesDataError


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Data converter (mmdet3d v2 info pkls)')
    p.add_argument('dataset', choices=['nuscenes'], help='name of the dataset')
    p.add_argument('--root-path', required=True, help='nuScenes data root (holds v1.0-*/, samples/, sweeps/)')
    p.add_argument('--out-dir', required=True, help='where the info pkls are written')
    p.add_argument('--extra-tag', default='nuscenes', help='prefix of the info file names')
    p.add_argument('--version', default='v1.0-trainval', help='v1.0-trainval, v1.0-mini or v1.0-test')
    p.add_argument('--max-sweeps', type=int, default=10, help='LiDAR sweeps recorded per sample')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        paths = create_nuscenes_infos(args.root_path, args.out_dir, info_prefix=args.extra_tag,
                                      version=args.version, max_sweeps=args.max_sweeps)
    except NuScenesDataError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    for p in paths:
        print(f'wrote {p}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Generate a synthetic nuScenes-format dataset (tables, LiDAR sweeps, six camera images, annotations); the
options are documented in :mod:`clap_plugin.apis.create_synthetic`.

    python tools/create_synthetic_nuscenes.py --root data/nuscenes --version v1.0-mini \
        --scenes 2 --samples-per-scene 6 --seed 0
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: clap_plugin
from clap_plugin.apis.create_synthetic import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

"""Create mmdet3d 1.4 (v2 format) info files and the GT-sampling database for a nuScenes tree, or only check
one; the logic and the options: :mod:`clap_plugin.apis.create_data`.

    python tools/create_data.py nuscenes --root-path DIR --out-dir DIR --extra-tag nuscenes --version v1.0-mini
    python tools/create_data.py nuscenes --root-path DIR --version v1.0-mini --check-only   # every file decoded
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: clap_plugin, projects/
from clap_plugin.apis.create_data import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

"""Write the encoder-only part of a checkpoint for ``load_from``; what is kept, the BN-statistics choices and
the options are documented in :mod:`clap_plugin.apis.export_pretrained`.

    python tools/export_pretrained.py CKPT OUT [--bn-stats keep|recompute|drop] [--config CONFIG --data-root DIR/]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: clap_plugin, projects/
from clap_plugin.apis.export_pretrained import main  # noqa: E402

if __name__ == '__main__':
    main(sys.argv[1:])

"""Train the image backbone on a 2D segmentation task: the 2D teacher of PPKT/CMCR and the image-backbone
initialisation of every pre-training arm; the logic and the options are documented in
:mod:`clap_plugin.apis.train_2d_teacher`.

    python tools/train_2d_teacher.py --data-root DIR --out work_dirs/teacher_2d.pth
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: clap_plugin, projects/
from clap_plugin.apis.train_2d_teacher import main  # noqa: E402

if __name__ == '__main__':
    main(sys.argv[1:])

"""Train a detector or a pre-training model from a config with mmengine's Runner (mmdet3d's CLI).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--auto-scale-lr]
                                 [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

Single process on CPU or one GPU; several processes through ``tools/dist_train.sh`` (torchrun,
``--launcher pytorch``). Without CUDA a distributed run uses the ``gloo`` backend and an unwrapped-device
``DistributedDataParallel``. ``--cfg-options data_root=DIR`` moves every path under the config's data root
(dataset roots, the evaluator's info file); ``label_fraction=F`` / ``label_fraction_seed=S`` reach the
``LabelFractionDataset`` wrappers.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: clap_plugin, projects/
from clap_plugin.apis.launcher import close_process_group  # noqa: E402
from clap_plugin.apis.train import main  # noqa: E402

if __name__ == '__main__':
    main(sys.argv[1:])
    close_process_group()

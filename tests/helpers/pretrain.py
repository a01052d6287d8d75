"""The CPU-tiny CLAP pre-training config and its training set on a synthetic data root, seeded as the
pre-training tests expect (torch and numpy seeded before the config and the dataset are built)."""
import os.path as osp
from typing import Tuple

import numpy as np
import torch
from mmdet3d.registry import DATASETS
from mmengine.config import Config

from .paths import REPO

TINY_PRETRAIN = osp.join(REPO, 'configs', 'clap_pretrain_nus_cpu-tiny.py')


def tiny_pretrain_setup(data_root: str, seed: int = 0) -> Tuple[Config, object]:
    """(config, training dataset) of ``configs/clap_pretrain_nus_cpu-tiny.py`` on ``data_root``."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    cfg = Config.fromfile(TINY_PRETRAIN)
    cfg.train_dataloader.dataset.data_root = data_root
    return cfg, DATASETS.build(cfg.train_dataloader.dataset)

"""A fixed, seeded subset of a training set: fine-tuning with a fraction of the labels (CLAP: 5%).

``LabelFractionDataset`` wraps any dataset (a config dict or a built dataset) and keeps
``max(1, round(fraction * len(dataset)))`` of its samples. The kept indices depend only on the seed and the
wrapped dataset's length: a seeded permutation of ``range(len(dataset))`` whose first ``k`` entries are kept,
sorted. The same fraction and seed therefore give the same subset in every process and every run, and a
smaller fraction with the same seed keeps a subset of a larger one's samples (the permutation's prefixes are
nested).
"""
import copy
from typing import Any, List, Union

import numpy as np
from mmdet3d.registry import DATASETS
from mmengine.dataset import BaseDataset, force_full_init


def label_fraction_indices(num_samples: int, fraction: float, seed: int) -> List[int]:
    """Sorted indices of the samples kept from ``num_samples`` at ``fraction`` with ``seed``.

    Args:
        num_samples: length of the full dataset (> 0).
        fraction: share of the samples to keep, in (0, 1].
        seed: seed of the permutation.

    Returns:
        ``max(1, round(fraction * num_samples))`` distinct indices in increasing order.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise TypeError(f'fraction must be a number in (0, 1], got {fraction!r}')
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f'fraction must be in (0, 1], got {fraction}')
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be an int >= 0, got {seed!r}')
    if num_samples <= 0:
        raise ValueError(f'the wrapped dataset is empty (length {num_samples}); nothing to keep')
    keep = max(1, int(round(float(fraction) * num_samples)))
    perm = np.random.default_rng(int(seed)).permutation(num_samples)
    return sorted(int(i) for i in perm[:keep])


@DATASETS.register_module()
class LabelFractionDataset:
    """Keep a fixed, seeded ``fraction`` of the samples of ``dataset``.

    Args:
        dataset: the wrapped dataset, or its config.
        fraction: share of the samples to keep, in (0, 1] (1.0 keeps all).
        seed: seed of the subset (independent of the training seed, so that runs with different training
            seeds see the same labels).
        lazy_init: defer loading the wrapped dataset's annotations until first use.
    """

    def __init__(self, dataset: Union[BaseDataset, dict], fraction: float, seed: int = 0,
                 lazy_init: bool = False) -> None:
        if isinstance(dataset, dict):
            self.dataset = DATASETS.build(copy.deepcopy(dataset))
        elif hasattr(dataset, '__getitem__') and hasattr(dataset, '__len__'):
            self.dataset = dataset
        else:
            raise TypeError(f'dataset must be a dataset or a config dict, got {type(dataset).__name__}')
        # validate the arguments now, before any annotation is loaded
        label_fraction_indices(1, fraction, seed)
        self.fraction = float(fraction)
        self.seed = int(seed)
        self.indices: List[int] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information."""
        return copy.deepcopy(self.dataset.metainfo)

    def full_init(self) -> None:
        """Load the wrapped dataset's annotations and choose the kept indices."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        self.indices = label_fraction_indices(len(self.dataset), self.fraction, self.seed)
        self._fully_initialized = True

    @force_full_init
    def _get_ori_dataset_idx(self, idx: int) -> int:
        if not -len(self.indices) <= idx < len(self.indices):
            raise IndexError(f'index {idx} out of range for a LabelFractionDataset of {len(self.indices)} '
                             'samples')
        return self.indices[idx]

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """Annotation of the ``idx``-th kept sample."""
        return self.dataset.get_data_info(self._get_ori_dataset_idx(idx))

    @force_full_init
    def get_cat_ids(self, idx: int) -> Any:
        """Category ids of the ``idx``-th kept sample (for class-balanced wrappers such as CBGS)."""
        return self.dataset.get_cat_ids(self._get_ori_dataset_idx(idx))

    def __getitem__(self, idx: int) -> Any:
        if not self._fully_initialized:
            self.full_init()
        return self.dataset[self._get_ori_dataset_idx(idx)]

    @force_full_init
    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(fraction={self.fraction}, seed={self.seed}, '
                f'kept={len(self.indices) if self._fully_initialized else "not initialised"})')

"""Gram regulariser of the prototypes: mean off-diagonal entry of K K^T with unit-norm rows (CLAP, arXiv 2412.03059)."""
from typing import List, Optional, Union

import torch.nn.functional as F
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


def gram_off_diagonal_mean(prototypes: Tensor) -> Tensor:
    """(N_K, d_K) prototypes -> scalar mean of the off-diagonal entries of the normalised Gram matrix.

    Equals 1 for collapsed prototypes and -1 / (N_K - 1) (its minimum) for a regular simplex.
    """
    if prototypes.dim() != 2 or prototypes.shape[0] < 2:
        raise ValueError(f'prototypes must be (N_K >= 2, d_K), got shape {tuple(prototypes.shape)}')
    k = F.normalize(prototypes, dim=-1)
    n = k.shape[0]
    # sum of all entries of K K^T = |sum of rows|^2; the diagonal sums to n
    total = k.sum(dim=0).pow(2).sum()
    return (total - (k * k).sum()) / (n * (n - 1))


@MODELS.register_module()
class GramRegularizer(BaseModule):
    """L_GMM = loss_weight * mean off-diagonal of K K^T (K row-normalised).

    Args:
        loss_weight: weight of the term (paper: 0.1).
    """

    def __init__(self, loss_weight: float = 0.1, init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_weight = float(loss_weight)

    def forward(self, prototypes: Tensor) -> Tensor:
        """(N_K, d_K) prototypes -> weighted scalar loss."""
        return self.loss_weight * gram_off_diagonal_mean(prototypes)

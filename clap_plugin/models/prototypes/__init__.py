"""Prototypes: Sinkhorn-Knopp codes, swapped prototype loss, Gram regulariser."""
from .gram_regularizer import GramRegularizer, gram_off_diagonal_mean
from .sinkhorn import sinkhorn_knopp
from .swapped_prototype_loss import SwappedPrototypeLoss

__all__ = ['GramRegularizer', 'SwappedPrototypeLoss', 'gram_off_diagonal_mean', 'sinkhorn_knopp']

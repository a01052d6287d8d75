"""Prototypes: Sinkhorn-Knopp codes, swapped prototype loss, Gram regulariser, the state the EM hook shares."""
from .gram_regularizer import GramRegularizer, gram_off_diagonal_mean
from .prototype_state import PrototypeState
from .sinkhorn import sinkhorn_knopp
from .swapped_prototype_loss import SwappedPrototypeLoss

__all__ = ['GramRegularizer', 'PrototypeState', 'SwappedPrototypeLoss', 'gram_off_diagonal_mean', 'sinkhorn_knopp']

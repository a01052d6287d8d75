"""Batch-norm running statistics of pre-trained encoders, for export.

Pre-training feeds the encoders 90%-masked inputs, so the running means and variances their BN layers hold
at the end describe masked LiDAR and zeroed image patches, not the inputs a detector sees. Before export they
can be re-estimated on unmasked inputs (:func:`recompute_bn_statistics`) or dropped (:func:`drop_bn_statistics`,
the detector then starts from the initial 0 / 1 statistics).
"""
from collections import OrderedDict
from typing import Callable, Dict, Iterable

import torch
from torch import Tensor, nn

BN_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')


def batch_norm_layers(module: nn.Module) -> Dict[str, nn.modules.batchnorm._BatchNorm]:
    """Name -> BN layer (1d/2d/3d and SyncBN) of ``module``."""
    return {n: m for n, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


@torch.no_grad()
def recompute_bn_statistics(module: nn.Module, batches: Iterable, forward: Callable[[object], None]) -> int:
    """Re-estimate every BN layer's running statistics of ``module`` as the plain average over ``batches``.

    Each layer's statistics are reset and its momentum set to None (cumulative average) while ``forward`` is
    called on every batch in train mode without gradients; momentum and mode are restored afterwards.
    Returns the number of batches seen.
    """
    layers = batch_norm_layers(module)
    if not layers:
        raise ValueError('the module has no batch-norm layer')
    momenta = {n: m.momentum for n, m in layers.items()}
    was_training = module.training
    for m in layers.values():
        m.reset_running_stats()
        m.momentum = None
    module.train()
    seen = 0
    try:
        for batch in batches:
            forward(batch)
            seen += 1
    finally:
        for n, m in layers.items():
            m.momentum = momenta[n]
        module.train(was_training)
    if seen == 0:
        raise ValueError('no batch was given to re-estimate the BN statistics')
    return seen


def drop_bn_statistics(state: 'OrderedDict[str, Tensor]') -> 'OrderedDict[str, Tensor]':
    """A copy of ``state`` without the BN running buffers (the loader keeps the detector's initial ones)."""
    out = OrderedDict((k, v) for k, v in state.items() if k.rsplit('.', 1)[-1] not in BN_BUFFERS)
    metadata = getattr(state, '_metadata', None)
    if metadata is not None:
        out._metadata = metadata
    return out

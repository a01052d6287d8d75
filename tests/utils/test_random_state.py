"""RandomState: every stream captured and put back, through a checkpoint file read with weights_only=True."""
import random

import numpy as np
import pytest
import torch
from torch import nn

from clap_plugin.utils.random_state import RandomState, module_generators


class _OwnsGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.gen = torch.Generator().manual_seed(11)


def _draw(model):
    return (random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(3).tolist(),
            torch.rand(2, generator=model[0].gen).tolist())


def test_restore_replays_every_stream_through_a_checkpoint_file(tmp_path):
    model = nn.Sequential(_OwnsGenerator())
    assert list(module_generators(model)) == ['0.gen']
    np.random.randn()  # a cached Gaussian in numpy's state
    state = RandomState.capture(model)
    first = _draw(model)
    torch.save({'rng': state.to_checkpoint()}, tmp_path / 'c.pth')
    _draw(model)  # move every stream on
    loaded = torch.load(tmp_path / 'c.pth', weights_only=True)['rng']  # plain types only
    RandomState.from_checkpoint(loaded).restore(model)
    assert _draw(model) == first


def test_restore_refuses_other_generators_and_names_missing_streams():
    state = RandomState.capture(nn.Sequential(_OwnsGenerator()))
    with pytest.raises(ValueError, match='module generators'):
        state.restore(nn.Linear(1, 1))
    with pytest.raises(KeyError, match='numpy'):
        RandomState.from_checkpoint({'python': {}, 'torch_cpu': torch.zeros(1)})

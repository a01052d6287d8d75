"""Every random stream a training process draws from, captured and restored as one value.

A run that is killed and resumed ends bit-identical to the uninterrupted run only if, from the resume point
on, every draw gives what it gave the first time: Python's ``random``, numpy's global generator, torch's CPU
generator, every CUDA device's generator, and each ``torch.Generator`` that a module of the model owns as an
attribute. :class:`RandomState` holds them; :meth:`RandomState.to_checkpoint` gives a dict of tensors, lists
and numbers only, so that torch's ``weights_only`` loader reads it back without an allow-list entry.
"""
import random
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import Tensor, nn


def module_generators(model: Optional[nn.Module]) -> Dict[str, torch.Generator]:
    """``{'<module path>.<attribute>': generator}`` for every ``torch.Generator`` attribute of the modules."""
    if model is None:
        return {}
    found = {}
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, torch.Generator):
                found[f'{name}.{attr}' if name else attr] = value
    return found


@dataclass
class RandomState:
    """The state of every random stream of this process.

    Attributes:
        python: ``random.getstate()``.
        numpy: numpy's global state as ``(kind, keys (624,) uint32, pos, has_gauss, cached_gaussian)``.
        torch_cpu: ``torch.get_rng_state()`` (uint8 tensor).
        torch_cuda: ``torch.cuda.get_rng_state_all()``, one uint8 tensor per visible device (empty on CPU).
        generators: the state of each generator a module owns, by ``'<module path>.<attribute>'``.
    """
    python: tuple
    numpy: tuple
    torch_cpu: Tensor
    torch_cuda: List[Tensor] = field(default_factory=list)
    generators: Dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def capture(cls, model: Optional[nn.Module] = None) -> 'RandomState':
        """The current state of every stream (and of the generators ``model``'s modules own)."""
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return cls(python=random.getstate(), numpy=np.random.get_state(), torch_cpu=torch.get_rng_state(),
                   torch_cuda=list(cuda),
                   generators={k: g.get_state() for k, g in module_generators(model).items()})

    def restore(self, model: Optional[nn.Module] = None) -> None:
        """Set every stream to this state.

        Raises:
            ValueError: ``model`` owns a generator that the state does not know, or the reverse, or the
                number of CUDA devices differs (a state from another machine layout).
        """
        owned = module_generators(model)
        if model is not None and set(owned) != set(self.generators):
            raise ValueError(f'the saved random state has module generators {sorted(self.generators)}, '
                             f'the model owns {sorted(owned)}')
        if torch.cuda.is_available() and self.torch_cuda:
            if len(self.torch_cuda) != torch.cuda.device_count():
                raise ValueError(f'the saved random state has {len(self.torch_cuda)} CUDA generators, this '
                                 f'process sees {torch.cuda.device_count()} devices')
            torch.cuda.set_rng_state_all(self.torch_cuda)
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        torch.set_rng_state(self.torch_cpu)
        for name, gen in owned.items():
            gen.set_state(self.generators[name])

    def to_checkpoint(self) -> dict:
        """Plain types only (tensors, lists, numbers, strings), loadable with ``weights_only=True``."""
        version, internal, gauss = self.python
        kind, keys, pos, has_gauss, cached = self.numpy
        return dict(python=dict(version=int(version), internal=list(internal), gauss=gauss),
                    numpy=dict(kind=str(kind), keys=torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                               pos=int(pos), has_gauss=int(has_gauss), cached_gaussian=float(cached)),
                    torch_cpu=self.torch_cpu.clone(), torch_cuda=[t.clone() for t in self.torch_cuda],
                    generators={k: v.clone() for k, v in self.generators.items()})

    @classmethod
    def from_checkpoint(cls, state: dict) -> 'RandomState':
        """The inverse of :meth:`to_checkpoint`.

        Raises:
            KeyError: a stream is missing from ``state`` (names it).
        """
        missing = {'python', 'numpy', 'torch_cpu'} - set(state)
        if missing:
            raise KeyError(f'random state lacks {sorted(missing)}')
        py, npy = state['python'], state['numpy']
        return cls(python=(py['version'], tuple(py['internal']), py['gauss']),
                   numpy=(npy['kind'], np.asarray(npy['keys'].numpy(), dtype=np.uint32), npy['pos'],
                          npy['has_gauss'], npy['cached_gaussian']),
                   torch_cpu=state['torch_cpu'], torch_cuda=list(state.get('torch_cuda', [])),
                   generators=dict(state.get('generators', {})))

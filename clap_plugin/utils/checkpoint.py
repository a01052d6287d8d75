"""Let torch>=2.6 (``weights_only=True`` by default) load the checkpoints that mmengine writes.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``. Its checkpoints carry, besides tensors,
the message hub state (``HistoryBuffer``), numpy arrays and scalars and config objects in ``meta``. Rather
than turning the safe loader off, the classes mmengine writes are added to torch's allow-list, so
``load_from`` and ``--resume`` work with no environment variable and arbitrary pickles stay refused.
"""
from typing import List

import numpy as np
import torch


def _numpy_globals() -> List[object]:
    out: List[object] = [np.ndarray, np.dtype]
    try:  # numpy 1.x layout
        from numpy.core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 2.x layout
        from numpy._core.multiarray import _reconstruct, scalar  # type: ignore
    out += [_reconstruct, scalar]
    # dtype classes such as numpy.dtypes.Float64DType are pickled by reference
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return out


def mmengine_checkpoint_globals() -> List[object]:
    """Classes and functions found in mmengine checkpoints besides tensors."""
    import builtins
    import collections

    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer
    # HistoryBuffer pickles its statistics methods by reference, through getattr(HistoryBuffer, name)
    return [HistoryBuffer, ConfigDict, collections.OrderedDict, collections.defaultdict, builtins.getattr,
            builtins.set, builtins.frozenset, builtins.slice, *_numpy_globals()]


def allow_mmengine_checkpoints() -> None:
    """Add the classes of :func:`mmengine_checkpoint_globals` to ``torch.serialization``'s safe globals."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 loads them anyway
        return
    add(mmengine_checkpoint_globals())

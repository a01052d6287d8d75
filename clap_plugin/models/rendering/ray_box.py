"""Ray / axis-aligned box intersection (slab method): where rays enter and leave the scene box."""
from typing import Sequence, Tuple, Union

import torch
from torch import Tensor

BoxBound = Union[Tensor, Sequence[float]]


def _slabs(origins: Tensor, dirs: Tensor, box_min: BoxBound, box_max: BoxBound) -> Tuple[Tensor, Tensor]:
    """Per-axis entry and exit distances (R, 3), (R, 3); the box bounds may be tensors or Python numbers."""
    safe = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    if isinstance(box_min, Tensor):
        t0, t1 = (box_min - origins) / safe, (box_max - origins) / safe
    else:  # Python scalars per axis: no host -> device copy
        t0 = torch.stack([(float(box_min[i]) - origins[:, i]) / safe[:, i] for i in range(3)], dim=-1)
        t1 = torch.stack([(float(box_max[i]) - origins[:, i]) / safe[:, i] for i in range(3)], dim=-1)
    return torch.minimum(t0, t1), torch.maximum(t0, t1)


def ray_box_intersection(origins: Tensor, dirs: Tensor, box_min: BoxBound,
                         box_max: BoxBound) -> Tuple[Tensor, Tensor]:
    """Entry and exit distances (R,), (R,) of rays (R, 3) through an axis-aligned box.

    ``box_min`` / ``box_max`` are (3,) tensors or sequences of 3 numbers.
    """
    near, far = _slabs(origins, dirs, box_min, box_max)
    return near.amax(dim=-1), far.amin(dim=-1)


def ray_box_exit_axis(origins: Tensor, dirs: Tensor, box_min: BoxBound, box_max: BoxBound) -> Tensor:
    """(R,) axis (0 x, 1 y, 2 z) of the face through which each ray leaves the box."""
    return _slabs(origins, dirs, box_min, box_max)[1].argmin(dim=-1)

"""The rays of one sample with their targets: the one ray container from ray generation to the compositor
(as nerfstudio's ``RayBundle``)."""
from dataclasses import dataclass, fields, replace
from typing import Optional, Sequence, Union

import torch
from torch import Tensor


@dataclass
class RayBatch:
    """R rays in the (augmented) LiDAR frame with their range and colour targets.

    Attributes:
        origins: (R, 3) ray origins, metres.
        directions: (R, 3) directions (the rendering head normalises them).
        range: (R,) range target along the ray, metres (any value where ``range_mask`` is False).
        range_mask: (R,) bool, the rays that have a range target.
        rgb: (R, 3) colour target in [0, 1] (any value where ``rgb_mask`` is False).
        rgb_mask: (R,) bool, the rays that have a colour target.
        near, far: (R,) sampling interval along each ray (metres), or None until the rendering head bounds the
            rays by its scene box (:meth:`with_bounds`).
    """
    origins: Tensor
    directions: Tensor
    range: Tensor
    range_mask: Tensor
    rgb: Tensor
    rgb_mask: Tensor
    near: Optional[Tensor] = None
    far: Optional[Tensor] = None

    @classmethod
    def create(cls, origins: Tensor, directions: Tensor, range: Optional[Tensor] = None,
               range_mask: Optional[Tensor] = None, rgb: Optional[Tensor] = None,
               rgb_mask: Optional[Tensor] = None) -> 'RayBatch':
        """A batch from (R, 3) origins and directions; a missing target gets zeros and an all-False mask, a
        missing mask of a given target is all True."""
        o = origins.reshape(-1, 3)
        n, dev = o.shape[0], o.device

        def mask(target: Optional[Tensor], given: Optional[Tensor]) -> Tensor:
            if given is not None:
                return given.to(device=dev, dtype=torch.bool).reshape(-1)
            return torch.full((n, ), target is not None, dtype=torch.bool, device=dev)

        return cls(origins=o, directions=directions.reshape(-1, 3),
                   range=range.reshape(-1) if range is not None else o.new_zeros(n),
                   range_mask=mask(range, range_mask),
                   rgb=rgb.reshape(-1, 3) if rgb is not None else o.new_zeros(n, 3),
                   rgb_mask=mask(rgb, rgb_mask))

    @classmethod
    def cat(cls, batches: Sequence['RayBatch']) -> 'RayBatch':
        """Concatenate batches along the rays (at least one batch; bounds on all of them or on none)."""
        if not batches:
            raise ValueError('RayBatch.cat needs at least one batch')
        out = {}
        for f in fields(cls):
            values = [getattr(b, f.name) for b in batches]
            if all(v is None for v in values):
                out[f.name] = None
            elif any(v is None for v in values):
                raise ValueError(f'RayBatch.cat: "{f.name}" is set on some batches only')
            else:
                out[f.name] = torch.cat(values)
        return cls(**out)

    def with_bounds(self, near: Tensor, far: Tensor) -> 'RayBatch':
        """The same rays with the (R,) sampling interval ``near`` .. ``far``."""
        return replace(self, near=near, far=far)

    def to(self, device: Optional[Union[str, torch.device]] = None,
           dtype: Optional[torch.dtype] = None) -> 'RayBatch':
        """Move to ``device``; ``dtype`` applies to the floating-point fields (masks stay bool)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = None if v is None else v.to(device=device, dtype=dtype if v.is_floating_point() else None)
        return RayBatch(**out)

    def __len__(self) -> int:
        return self.origins.shape[0]

    def __getitem__(self, index: Union[slice, Tensor]) -> 'RayBatch':
        """The rays selected by a slice, (K,) indices or an (R,) bool mask."""
        return RayBatch(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                           for f in fields(self)})

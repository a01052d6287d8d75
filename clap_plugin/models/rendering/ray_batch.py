"""The rays of one sample with their targets: the contract between ray building and the rendering head."""
from dataclasses import dataclass, fields
from typing import Mapping, Optional, Sequence, Union

import torch
from torch import Tensor


@dataclass
class RayBatch:
    """R rays in the (augmented) LiDAR frame with their range and colour targets.

    Attributes:
        origins: (R, 3) ray origins, metres.
        directions: (R, 3) directions (the head normalises them).
        range: (R,) range target along the ray, metres (any value where ``range_mask`` is False).
        range_mask: (R,) bool, the rays that have a range target.
        rgb: (R, 3) colour target in [0, 1] (any value where ``rgb_mask`` is False).
        rgb_mask: (R,) bool, the rays that have a colour target.
    """
    origins: Tensor
    directions: Tensor
    range: Tensor
    range_mask: Tensor
    rgb: Tensor
    rgb_mask: Tensor

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
    def from_mapping(cls, rays: Mapping[str, Tensor]) -> 'RayBatch':
        """A batch from a dict with the attribute names as keys (``origins`` and ``directions`` required)."""
        for key in ('origins', 'directions'):
            if key not in rays:
                raise KeyError(f'ray batch lacks "{key}" (has {sorted(rays)})')
        unknown = set(rays) - {f.name for f in fields(cls)}
        if unknown:
            raise KeyError(f'unknown ray batch keys {sorted(unknown)}')
        return cls.create(**rays)

    @classmethod
    def cat(cls, batches: Sequence['RayBatch']) -> 'RayBatch':
        """Concatenate batches along the rays (at least one batch)."""
        if not batches:
            raise ValueError('RayBatch.cat needs at least one batch')
        return cls(**{f.name: torch.cat([getattr(b, f.name) for b in batches]) for f in fields(cls)})

    def to(self, device: Optional[Union[str, torch.device]] = None,
           dtype: Optional[torch.dtype] = None) -> 'RayBatch':
        """Move to ``device``; ``dtype`` applies to the floating-point fields (masks stay bool)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.to(device=device, dtype=dtype if v.is_floating_point() else None)
        return RayBatch(**out)

    def __len__(self) -> int:
        return self.origins.shape[0]

    def __getitem__(self, index: Union[slice, Tensor]) -> 'RayBatch':
        """The rays selected by a slice, (K,) indices or an (R,) bool mask."""
        return RayBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


RayBatchLike = Union[RayBatch, Mapping[str, Tensor]]


def as_ray_batch(rays: RayBatchLike) -> RayBatch:
    """A :class:`RayBatch`; a mapping (scripts that also run against older revisions pass dicts) is
    converted with :meth:`RayBatch.from_mapping`."""
    return rays if isinstance(rays, RayBatch) else RayBatch.from_mapping(rays)

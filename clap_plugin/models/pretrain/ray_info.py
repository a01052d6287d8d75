"""What :meth:`CLAPPretrainer.build_rays` knows about the rays of one sample besides the ray batch."""
from dataclasses import dataclass
from typing import Optional

from torch import Tensor

from ..ray_selection.selection import RaySelection


@dataclass
class SampleRayInfo:
    """Attributes:
        points: (P, 3) keyframe LiDAR points inside the range (the candidates of the selection).
        proj: (N_cam, 4, 4) augmented-LiDAR -> augmented-pixel projections, or None without camera rays.
        selection: the selected points and pixels.
    """
    points: Tensor
    proj: Optional[Tensor]
    selection: RaySelection

"""The result of ray selection: which LiDAR points and camera pixels of one sample get a ray."""
from dataclasses import dataclass
from typing import Optional

from torch import Tensor

# How camera pixels are drawn (``CurvatureRaySelector(pixel_policy=...)``):
# 'weight_maps': from the selector's pixel maps (uniform in warm-up, the blurred curvature weights after);
# 'through_points': uniformly among the pixels that LiDAR points project into (UniPAD's camera rays).
PIXEL_POLICIES = ('weight_maps', 'through_points')
# How points (and weight-map pixels) are weighted (``CurvatureRaySelector(weighting=...)``):
# 'curvature': uniformly during the warm-up epochs, by the SDF curvature after (CLAP);
# 'uniform': uniformly in every epoch (Table 3, "joint + uniform sampling").
WEIGHTINGS = ('curvature', 'uniform')


@dataclass
class RaySelection:
    """Selected rays of one sample.

    Attributes:
        point_inds: (N_L,) indices of the LiDAR points that get a ray.
        point_weights: (P,) selection probabilities of all points.
        pixel_maps: (N_cam, H, W) pixel selection probabilities (each map sums to 1), or None without cameras.
        pixels: (N_cam, N_C, 2) selected pixel centres (u, v), or None without cameras.
    """
    point_inds: Tensor
    point_weights: Tensor
    pixel_maps: Optional[Tensor] = None
    pixels: Optional[Tensor] = None

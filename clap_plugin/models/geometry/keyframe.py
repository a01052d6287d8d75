"""Keyframe selection: the points of the current LiDAR sweep (time-lag column 0) inside the point-cloud range,
the points CLAP (arXiv 2412.03059) and the baselines cast rays through or pair with pixels."""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor


def keyframe_points(points: Tensor, point_cloud_range: Sequence[float],
                    keyframe_dim: Optional[int]) -> Tuple[Tensor, Tensor]:
    """(P, C) -> the keyframe points (P', C) (column ``keyframe_dim`` == 0; every point when ``keyframe_dim`` is
    None or beyond the columns) inside ``[x0, x1) x [y0, y1) x [z0, z1)``, and their indices (P',)."""
    keep = torch.ones(points.shape[0], dtype=torch.bool, device=points.device)
    if keyframe_dim is not None and points.shape[1] > keyframe_dim:
        keep &= points[:, keyframe_dim] == 0
    x0, y0, z0, x1, y1, z1 = [float(v) for v in point_cloud_range]
    p = points[:, :3]
    keep &= (p[:, 0] >= x0) & (p[:, 0] < x1) & (p[:, 1] >= y0) & (p[:, 1] < y1) & (p[:, 2] >= z0) & (p[:, 2] < z1)
    idx = keep.nonzero(as_tuple=True)[0]
    return points[idx], idx

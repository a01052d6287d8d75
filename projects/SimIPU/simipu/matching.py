"""Second LiDAR view and one-to-one keypoint matching between the two views (SimIPU's intra-modal pairs)."""
import math
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def random_view_transform(rot_range: Sequence[float], scale_range: Sequence[float], translation_std: float,
                          flip_prob: float, generator: Optional[torch.Generator] = None,
                          dtype=torch.float32) -> Tensor:
    """A (4, 4) similarity: optional flip of y, rotation about z, isotropic scale, translation."""
    r = torch.rand(4, generator=generator, dtype=torch.float64)
    angle = float(rot_range[0]) + (float(rot_range[1]) - float(rot_range[0])) * float(r[0])
    scale = float(scale_range[0]) + (float(scale_range[1]) - float(scale_range[0])) * float(r[1])
    t = torch.randn(3, generator=generator, dtype=torch.float64) * float(translation_std)
    c, s = math.cos(angle), math.sin(angle)
    mat = torch.eye(4, dtype=torch.float64)
    mat[:3, :3] = scale * torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    if float(r[2]) < flip_prob:
        mat[:3, 1] = -mat[:3, 1]  # mirror y before rotating
    mat[:3, 3] = t
    return mat.to(dtype)


def transform_points(points: Tensor, mat: Tensor) -> Tensor:
    """Apply a (4, 4) transform to the xyz columns of (P, C) points (other columns kept)."""
    xyz = points[:, :3] @ mat[:3, :3].t().to(points.dtype) + mat[:3, 3].to(points.dtype)
    return torch.cat([xyz, points[:, 3:]], 1)


def match_keypoints(a: Tensor, b: Tensor, max_distance: float = float('inf')) -> Tuple[Tensor, Tensor]:
    """One-to-one matching of keypoints ``a`` (K1, 3) and ``b`` (K2, 3) given in the same frame: Hungarian
    assignment minimising the summed Euclidean distance (scipy), then pairs farther than ``max_distance`` are
    dropped. Returns index tensors (ia, ib) of equal length."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f'keypoints must be (K1, D) and (K2, D), got {tuple(a.shape)} and {tuple(b.shape)}')
    if a.shape[0] == 0 or b.shape[0] == 0:
        empty = torch.zeros(0, dtype=torch.long, device=a.device)
        return empty, empty.clone()
    cost = torch.cdist(a.detach().double(), b.detach().double()).cpu().numpy()
    ia, ib = linear_sum_assignment(cost)
    keep = cost[ia, ib] <= max_distance
    ia, ib = np.asarray(ia)[keep], np.asarray(ib)[keep]
    return torch.as_tensor(ia, dtype=torch.long, device=a.device), torch.as_tensor(ib, dtype=torch.long,
                                                                                   device=a.device)


def farthest_point_sampling(xyz: Tensor, k: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Indices of ``min(k, P)`` points of ``xyz`` (P, 3) by farthest-point sampling (as PointNet++'s SA layers
    pick SimIPU's keypoints): a random first point, then each next point is the one farthest from those
    chosen so far."""
    n = xyz.shape[0]
    k = min(int(k), n)
    if k <= 0:
        return torch.zeros(0, dtype=torch.long, device=xyz.device)
    pts = xyz.detach().float()
    out = torch.empty(k, dtype=torch.long, device=xyz.device)
    cur = torch.randint(n, (), generator=generator).to(xyz.device)
    dist = torch.full((n, ), float('inf'), device=xyz.device)
    for i in range(k):  # indices stay on the device: no host synchronisation per step
        out[i] = cur
        dist = torch.minimum(dist, (pts - pts[cur]).square().sum(1))
        cur = torch.argmax(dist)
    return out

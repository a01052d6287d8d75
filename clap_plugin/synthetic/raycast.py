"""Ray casting against the ground plane z = 0, yaw-rotated boxes and vertical cylinders (PyTorch, batched).

Rays are given in the global frame: origins (N, 3) or one shared origin (1, 3), unit directions (N, 3).
Distances are ``inf`` where a ray misses. Normals are recovered afterwards from the hit points, so the hot loop
only computes distances.
"""
from typing import List, Tuple

import numpy as np
import torch

from .scene import SceneObject

MISS_ID = -1
GROUND_ID = 0
MIN_T = 1e-4


def _inf_like(t: torch.Tensor) -> torch.Tensor:
    return torch.full_like(t, float('inf'))


def ray_ground_distance(origins: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Distance to the plane z = 0 along each ray (N,)."""
    dz = dirs[:, 2]
    t = -origins[:, 2] / torch.where(dz < -1e-9, dz, torch.full_like(dz, -1e-9))
    return torch.where((dz < -1e-9) & (t > MIN_T), t, _inf_like(t))


def _yaw_rotation(yaw: float, dtype: torch.dtype) -> torch.Tensor:
    c, s = float(np.cos(yaw)), float(np.sin(yaw))
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)  # object -> global


def ray_box_distance(origins: torch.Tensor, dirs: torch.Tensor, center: np.ndarray, size: np.ndarray,
                     yaw: float) -> torch.Tensor:
    """Entry distance (N,) into a box of ``size`` (length, width, height) rotated by ``yaw`` about z (slab test);
    ``inf`` on a miss or when the ray starts inside."""
    rot = _yaw_rotation(yaw, dirs.dtype)
    o = (origins - torch.as_tensor(center, dtype=dirs.dtype)) @ rot
    d = dirs @ rot
    inv = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    half = torch.as_tensor(size, dtype=dirs.dtype) / 2
    t1 = (-half - o) * inv
    t2 = (half - o) * inv
    t_near = torch.minimum(t1, t2).amax(dim=1)
    t_far = torch.maximum(t1, t2).amin(dim=1)
    return torch.where((t_near <= t_far) & (t_near > MIN_T), t_near, _inf_like(t_near))


def ray_cylinder_distance(origins: torch.Tensor, dirs: torch.Tensor, center: np.ndarray, radius: float,
                          height: float) -> torch.Tensor:
    """Entry distance (N,) into a vertical capped cylinder centred at ``center``."""
    o = origins - torch.as_tensor(center, dtype=dirs.dtype)
    ox, oy, oz = o[:, 0], o[:, 1], o[:, 2]
    dx, dy, dz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    a = (dx * dx + dy * dy).clamp(min=1e-12)
    b = 2 * (ox * dx + oy * dy)
    c = ox * ox + oy * oy - radius * radius
    disc = b * b - 4 * a * c
    t_side = (-b - torch.sqrt(disc.clamp(min=0))) / (2 * a)
    z_side = oz + t_side * dz
    t_side = torch.where((disc >= 0) & (t_side > MIN_T) & (z_side.abs() <= height / 2), t_side, _inf_like(t_side))
    safe_dz = torch.where(dz.abs() < 1e-12, torch.full_like(dz, 1e-12), dz)
    t_cap = (torch.where(dz < 0, height / 2 - oz, -height / 2 - oz)) / safe_dz
    px, py = ox + t_cap * dx, oy + t_cap * dy
    t_cap = torch.where((t_cap > MIN_T) & (px * px + py * py <= radius * radius), t_cap, _inf_like(t_cap))
    return torch.minimum(t_side, t_cap)


def ray_object_distance(origins: torch.Tensor, dirs: torch.Tensor, obj: SceneObject, t: float) -> torch.Tensor:
    center = obj.center_at(t)
    if obj.shape == 'box':
        return ray_box_distance(origins, dirs, center, obj.size, obj.yaw)
    if obj.shape == 'cylinder':
        return ray_cylinder_distance(origins, dirs, center, float(obj.size[0]) / 2, float(obj.size[2]))
    raise ValueError(f'unknown primitive shape {obj.shape!r} of object {obj.object_id}')


def object_corners(obj: SceneObject, t: float) -> np.ndarray:
    """(8, 3) corners of the object's geometry (its bounding box for cylinders) at time ``t``, global frame."""
    l, w, h = obj.size
    x = np.array([1, 1, 1, 1, -1, -1, -1, -1]) * l / 2
    y = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * w / 2
    z = np.array([1, -1, 1, -1, 1, -1, 1, -1]) * h / 2
    c, s = np.cos(obj.yaw), np.sin(obj.yaw)
    return np.stack([c * x - s * y, s * x + c * y, z], axis=1) + obj.center_at(t)


def cast_rays(origins: torch.Tensor, dirs: torch.Tensor, objects: List[SceneObject], t: float,
              max_range: float = float('inf')) -> Tuple[torch.Tensor, torch.Tensor]:
    """Nearest hit distance (N,) and object id (N,) of every ray against the ground and all ``objects``."""
    dist = ray_ground_distance(origins, dirs)
    ids = torch.where(torch.isfinite(dist), GROUND_ID, MISS_ID)
    for obj in objects:
        t_o = ray_object_distance(origins, dirs, obj, t)
        closer = t_o < dist
        dist = torch.where(closer, t_o, dist)
        ids = torch.where(closer, obj.object_id, ids)
    far = dist > max_range
    return dist.masked_fill(far, float('inf')), ids.masked_fill(far, MISS_ID)

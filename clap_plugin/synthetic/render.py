"""LiDAR sweeps and camera images of a :class:`Scene` by ray casting the same geometry.

Both sensors see the same primitives at their own capture time, so a pixel and a LiDAR return that look at the
same spot agree on the surface (same object, same depth).
"""
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch

from .raycast import GROUND_ID, MISS_ID, cast_rays, object_corners, ray_ground_distance, ray_object_distance
from .rig import LidarPattern, SensorCalibration, camera_pixel_rays, pose_matrix, yaw_quaternion
from .scene import (
    LANE_WIDTH,
    MAT_BARRIER,
    MAT_BUILDING,
    MAT_CONE,
    MAT_CYCLE,
    MAT_GROUND,
    MAT_PERSON,
    MAT_POLE,
    MAT_VEHICLE,
    ROAD_HALF_WIDTH,
    SIDEWALK_OUTER,
    Scene,
)

_SUN = np.array([0.4, 0.3, 0.85]) / np.linalg.norm([0.4, 0.3, 0.85])
_REFLECTIVITY = {MAT_GROUND: 0.12, MAT_BUILDING: 0.25, MAT_VEHICLE: 0.5, MAT_PERSON: 0.2, MAT_CONE: 0.75,
                 MAT_BARRIER: 0.6, MAT_POLE: 0.35, MAT_CYCLE: 0.4}


@dataclass
class ObjectTable:
    """Per-object attributes at one time, indexed by object id (row 0 is the ground)."""
    material: torch.Tensor  # (K,)
    color: torch.Tensor  # (K, 3)
    center: torch.Tensor  # (K, 3)
    half_size: torch.Tensor  # (K, 3) half length, width, height
    cos_yaw: torch.Tensor  # (K,)
    sin_yaw: torch.Tensor  # (K,)
    is_cylinder: torch.Tensor  # (K,) bool

    @classmethod
    def build(cls, scene: Scene, t: float, dtype: torch.dtype) -> 'ObjectTable':
        k = max([o.object_id for o in scene.objects], default=0) + 1
        material = torch.full((k,), MAT_GROUND, dtype=torch.long)
        color = torch.zeros((k, 3), dtype=dtype)
        center = torch.zeros((k, 3), dtype=dtype)
        half = torch.ones((k, 3), dtype=dtype)
        yaw = torch.zeros(k, dtype=torch.float64)
        cyl = torch.zeros(k, dtype=torch.bool)
        for o in scene.objects:
            material[o.object_id] = o.material
            color[o.object_id] = torch.as_tensor(o.color, dtype=dtype)
            center[o.object_id] = torch.as_tensor(o.center_at(t), dtype=dtype)
            half[o.object_id] = torch.as_tensor(o.size, dtype=dtype) / 2
            yaw[o.object_id] = o.yaw
            cyl[o.object_id] = o.shape == 'cylinder'
        return cls(material, color, center, half, torch.cos(yaw).to(dtype), torch.sin(yaw).to(dtype), cyl)

    def normals(self, points: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Outward unit normals (N, 3) at points (N, 3) on the surfaces ``ids`` (N,); ground and misses: +z."""
        idc = ids.clamp(min=0)
        rel = points - self.center[idc]
        c, s = self.cos_yaw[idc], self.sin_yaw[idc]
        local = torch.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], dim=1)
        scaled = local / self.half_size[idc]
        # boxes: the face whose slab the point lies on
        axis = scaled.abs().argmax(dim=1, keepdim=True)
        n_local = torch.zeros_like(local).scatter_(1, axis, torch.sign(scaled.gather(1, axis)))
        # cylinders: side wall or cap
        radial = torch.sqrt(scaled[:, 0] ** 2 + scaled[:, 1] ** 2).clamp(min=1e-9)
        on_cap = scaled[:, 2].abs() > radial
        side = torch.stack([scaled[:, 0] / radial, scaled[:, 1] / radial, torch.zeros_like(radial)], dim=1)
        cap = torch.zeros_like(local)
        cap[:, 2] = torch.sign(scaled[:, 2])
        n_cyl = torch.where(on_cap[:, None], cap, side)
        n_local = torch.where(self.is_cylinder[idc][:, None], n_cyl, n_local)
        normal = torch.stack([c * n_local[:, 0] - s * n_local[:, 1], s * n_local[:, 0] + c * n_local[:, 1],
                              n_local[:, 2]], dim=1)
        ground = ids <= GROUND_ID
        normal[ground] = torch.tensor([0.0, 0.0, 1.0], dtype=normal.dtype)
        return normal


def _hash_noise(ix: torch.Tensor, iy: torch.Tensor) -> torch.Tensor:
    """Deterministic pseudo-random value in [0, 1) per integer cell."""
    h = (ix * 73856093) ^ (iy * 19349663)
    return ((h % 1000).abs().to(torch.float32)) / 1000.0


def _texture(material: int, p: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor, rel: torch.Tensor,
             base: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Albedo (M, 3) and reflectivity (M,) of M surface points of one material. ``sx``, ``sy``: street-frame
    coordinates; ``rel``: relative height on the object in [0, 1]; ``base``: the objects' colours (M, 3)."""
    dt = p.dtype
    refl = torch.full((p.shape[0],), _REFLECTIVITY[material], dtype=dt)

    def rgb(*v):
        return torch.tensor(v, dtype=dt)

    if material == MAT_GROUND:
        ay = sy.abs()
        noise = _hash_noise(torch.floor(sx * 2).long(), torch.floor(sy * 2).long()).to(dt)
        gray = 0.30 + 0.05 * noise
        alb = torch.stack([gray, gray, gray * 1.02], dim=1)
        dashed = torch.remainder(sx, 6.0) < 3.0
        centre = (ay < 0.08) & dashed
        mark = (((ay - LANE_WIDTH).abs() < 0.07) & dashed) | ((ay - (ROAD_HALF_WIDTH - 0.15)).abs() < 0.08)
        walk = (ay > ROAD_HALF_WIDTH) & (ay < SIDEWALK_OUTER)
        tile = ((torch.remainder(sx, 1.5) < 0.05) | (torch.remainder(ay, 1.5) < 0.05)).to(dt)[:, None]
        alb = torch.where(walk[:, None], rgb(0.62, 0.6, 0.57) * (1 - 0.25 * tile), alb)
        alb = torch.where((ay >= SIDEWALK_OUTER)[:, None], rgb(0.35, 0.45, 0.3), alb)
        alb = torch.where(mark[:, None], rgb(0.92, 0.92, 0.88), alb)
        alb = torch.where(centre[:, None], rgb(0.9, 0.75, 0.2), alb)
        refl = torch.where(mark | centre, torch.full_like(refl, 0.6), refl)
        return alb, refl
    if material == MAT_BUILDING:
        u = torch.remainder(sx + sy, 3.0)
        v = torch.remainder(p[:, 2], 3.5)
        window = (u > 0.7) & (u < 2.3) & (v > 1.0) & (v < 2.4) & (p[:, 2] > 0.8)
        alb = torch.where(window[:, None], base * 0.3 + rgb(0.1, 0.15, 0.25), base)
        return alb, torch.where(window, torch.full_like(refl, 0.08), refl)
    if material == MAT_VEHICLE:
        win = (rel > 0.6) & (rel < 0.9)
        alb = torch.where(win[:, None], rgb(0.08, 0.1, 0.14), base)
        alb = torch.where((rel < 0.22)[:, None], rgb(0.07, 0.07, 0.07), alb)
        return alb, torch.where(win, torch.full_like(refl, 0.1), refl)
    if material == MAT_PERSON:
        alb = torch.where((rel < 0.5)[:, None], rgb(0.12, 0.15, 0.3), base)
        return torch.where((rel > 0.87)[:, None], rgb(0.85, 0.65, 0.5), alb), refl
    if material == MAT_CONE:
        band = (rel > 0.45) & (rel < 0.65)
        return torch.where(band[:, None], rgb(0.95, 0.95, 0.95), rgb(1.0, 0.45, 0.05).expand_as(base)), refl
    if material == MAT_BARRIER:
        stripe = torch.remainder(sx + sy + p[:, 2], 0.8) < 0.4
        return torch.where(stripe[:, None], rgb(0.95, 0.95, 0.95), rgb(0.85, 0.1, 0.1).expand_as(base)), refl
    if material == MAT_CYCLE:
        return torch.where((rel < 0.4)[:, None], rgb(0.1, 0.1, 0.1), base), refl
    return base, refl  # poles: plain metal


def surface_albedo(scene: Scene, table: ObjectTable, points: torch.Tensor,
                   object_id: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Albedo (N, 3) in [0, 1] and LiDAR reflectivity (N,) of the surfaces ``object_id`` (N,) hit at ``points``
    (N, 3). Points are grouped by material once (a sort), each group textured on a contiguous slice."""
    ids = object_id.clamp(min=0)
    mat = table.material[ids]
    groups = [torch.nonzero(mat == m).squeeze(1) for m in range(len(_REFLECTIVITY))]
    order = torch.cat(groups)
    counts = [len(g) for g in groups]
    p, ids_s = points[order], ids[order]
    c, s = float(np.cos(scene.heading)), float(np.sin(scene.heading))
    rx, ry = p[:, 0] - float(scene.origin[0]), p[:, 1] - float(scene.origin[1])
    sx, sy = c * rx + s * ry, -s * rx + c * ry  # street frame
    half_h = table.half_size[ids_s, 2]
    rel = ((p[:, 2] - (table.center[ids_s, 2] - half_h)) / (2 * half_h)).clamp(0, 1)
    base = table.color[ids_s]
    albedo = torch.empty_like(base)
    refl = torch.empty(p.shape[0], dtype=p.dtype)
    start = 0
    for material, count in enumerate(counts):
        if count == 0:
            continue
        sl = slice(start, start + count)
        albedo[sl], refl[sl] = _texture(material, p[sl], sx[sl], sy[sl], rel[sl], base[sl])
        start += count
    out_a, out_r = torch.empty_like(albedo), torch.empty_like(refl)
    out_a[order], out_r[order] = albedo, refl
    return out_a.clamp(0, 1), out_r


def shade(albedo: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """Ambient + Lambertian shading under a fixed sun. (N, 3)"""
    sun = torch.as_tensor(_SUN, dtype=normal.dtype)
    diffuse = (normal @ sun).clamp(min=0)
    return (albedo * (0.45 + 0.55 * diffuse)[:, None]).clamp(0, 1)


def sky_color(dirs: torch.Tensor) -> torch.Tensor:
    """Sky gradient for rays that hit nothing. (N, 3)"""
    up = dirs[:, 2].clamp(0, 1)[:, None]
    horizon = torch.tensor([0.75, 0.82, 0.9], dtype=dirs.dtype)
    zenith = torch.tensor([0.3, 0.5, 0.85], dtype=dirs.dtype)
    return horizon * (1 - up) + zenith * up


def ego_to_global(scene: Scene, t: float) -> np.ndarray:
    trans, yaw = scene.ego_pose(t)
    return pose_matrix(trans, yaw_quaternion(yaw))


@dataclass
class LidarSweep:
    points: np.ndarray  # (N, 5) float32: x, y, z (LiDAR frame), intensity, ring index
    object_id: np.ndarray  # (N,) id of the surface each point lies on


def render_lidar(scene: Scene, calib: SensorCalibration, pattern: LidarPattern, t: float,
                 rng: np.random.Generator, range_noise: float = 0.005) -> LidarSweep:
    """One sweep at time ``t`` (seconds). Points are expressed in the LiDAR frame."""
    lidar2global = ego_to_global(scene, t) @ calib.sensor_to_ego()
    dirs_local, rings = pattern.directions()
    dtype = torch.float64
    dirs = torch.as_tensor(dirs_local @ lidar2global[:3, :3].T, dtype=dtype)
    origin = torch.as_tensor(lidar2global[:3, 3], dtype=dtype)[None]
    dist, ids = cast_rays(origin, dirs, scene.objects, t, max_range=pattern.max_range)
    idx = torch.nonzero(torch.isfinite(dist) & (dist >= pattern.min_range)).squeeze(1)
    dist, ids, dirs = dist[idx], ids[idx], dirs[idx]
    points_g = origin + dist[:, None] * dirs
    table = ObjectTable.build(scene, t, dtype)
    _, refl = surface_albedo(scene, table, points_g, ids)
    cos = (table.normals(points_g, ids) * dirs).sum(1).abs()
    intensity = (255.0 * refl * cos).clamp(0, 255).round()
    noise = np.clip(rng.normal(0.0, range_noise, size=idx.numel()), -3 * range_noise, 3 * range_noise)
    xyz = dirs_local[idx.numpy()] * (dist.numpy() + noise)[:, None]
    pts = np.concatenate([xyz, intensity.numpy()[:, None], rings[idx.numpy()][:, None]], axis=1).astype(np.float32)
    return LidarSweep(points=pts, object_id=ids.numpy().astype(np.int32))


@dataclass
class CameraFrame:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray  # (H, W) float32 z-depth in the camera frame, inf for sky
    object_id: np.ndarray  # (H, W) int32, -1 for sky


_BOX_EDGES = [(i, j) for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count('1') == 1]


def _screen_rect(corners_cam: np.ndarray, intrinsic: np.ndarray, width: int, height: int,
                 near: float = 0.05) -> Tuple[int, int, int, int]:
    """Pixel rectangle (u0, v0, u1, v1) covering a box given by its 8 corners in the camera frame, clipped at
    the near plane; an empty rectangle when the box is behind the camera or off screen."""
    z = corners_cam[:, 2]
    pts = [corners_cam[z > near]]
    for i, j in _BOX_EDGES:  # edges crossing the near plane contribute their crossing point
        if (z[i] > near) != (z[j] > near):
            a = (near - z[i]) / (z[j] - z[i])
            pts.append((corners_cam[i] + a * (corners_cam[j] - corners_cam[i]))[None])
    pts = np.concatenate(pts)
    if len(pts) == 0:
        return 0, 0, 0, 0
    uvw = pts @ intrinsic.T
    uv = uvw[:, :2] / uvw[:, 2:3]
    u0, v0 = np.floor(uv.min(0)).astype(int) - 1
    u1, v1 = np.ceil(uv.max(0)).astype(int) + 1
    return max(u0, 0), max(v0, 0), min(u1, width), min(v1, height)


def render_camera(scene: Scene, calib: SensorCalibration, t: float, width: int, height: int,
                  pixel_rays: np.ndarray = None) -> CameraFrame:
    """Render one camera at time ``t``. Each primitive is tested only against the pixels of its projected
    rectangle (a depth buffer updated through views), so the cost follows the covered area."""
    cam2global = ego_to_global(scene, t) @ calib.sensor_to_ego()
    rays_cam = camera_pixel_rays(calib.intrinsic, width, height) if pixel_rays is None else pixel_rays
    dtype = torch.float32
    rot = torch.as_tensor(cam2global[:3, :3], dtype=dtype)
    dirs = (torch.as_tensor(rays_cam, dtype=dtype).reshape(-1, 3) @ rot.T).reshape(height, width, 3)
    origin = torch.as_tensor(cam2global[:3, 3], dtype=dtype)[None]
    dist = ray_ground_distance(origin, dirs.reshape(-1, 3)).reshape(height, width)
    ids = torch.where(torch.isfinite(dist), GROUND_ID, MISS_ID)
    global2cam = np.linalg.inv(cam2global)
    for obj in scene.objects:
        corners = object_corners(obj, t) @ global2cam[:3, :3].T + global2cam[:3, 3]
        u0, v0, u1, v1 = _screen_rect(corners, calib.intrinsic, width, height)
        if u0 >= u1 or v0 >= v1:
            continue
        t_o = ray_object_distance(origin, dirs[v0:v1, u0:u1].reshape(-1, 3), obj, t).reshape(v1 - v0, u1 - u0)
        d_view, i_view = dist[v0:v1, u0:u1], ids[v0:v1, u0:u1]
        closer = t_o < d_view
        d_view[closer] = t_o[closer]
        i_view[closer] = obj.object_id

    dist, ids, dirs = dist.reshape(-1), ids.reshape(-1), dirs.reshape(-1, 3)
    color = sky_color(dirs)
    hidx = torch.nonzero(ids != MISS_ID).squeeze(1)
    points = origin + dist[hidx, None] * dirs[hidx]
    h_ids = ids[hidx]
    table = ObjectTable.build(scene, t, dtype)
    albedo, _ = surface_albedo(scene, table, points, h_ids)
    color[hidx] = shade(albedo, table.normals(points, h_ids))
    depth = torch.full((dirs.shape[0],), float('inf'))
    depth[hidx] = dist[hidx] * (dirs[hidx] @ rot[:, 2])
    image = (color.reshape(height, width, 3) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    return CameraFrame(image=image, depth=depth.reshape(height, width).numpy(),
                       object_id=ids.reshape(height, width).numpy().astype(np.int32))

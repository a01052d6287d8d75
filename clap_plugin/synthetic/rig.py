"""The sensor rig of the synthetic nuScenes set: one top LiDAR and six cameras placed as on the nuScenes car.

Frames follow nuScenes: ego x forward, y left, z up; the LIDAR_TOP frame has x right, y forward, z up; a camera
frame has x right, y down, z forward (optical axis).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np
from pyquaternion import Quaternion

CAMERA_NAMES: Tuple[str, ...] = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT',
                                 'CAM_BACK_RIGHT')
LIDAR_NAME = 'LIDAR_TOP'
IMAGE_WIDTH, IMAGE_HEIGHT = 1600, 900


def yaw_quaternion(yaw: float) -> Quaternion:
    """Rotation about +z by ``yaw`` radians."""
    return Quaternion(axis=[0.0, 0.0, 1.0], angle=float(yaw))


# camera axes (x right, y down, z forward) expressed in a forward-looking ego-aligned frame
_CAM_TO_FORWARD = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass
class SensorCalibration:
    """Extrinsics (sensor -> ego) and, for cameras, the 3x3 intrinsic matrix."""
    channel: str
    modality: str
    translation: np.ndarray  # (3,)
    rotation: Quaternion
    intrinsic: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    time_offset_us: int = 0  # capture time relative to the LiDAR keyframe

    def sensor_to_ego(self) -> np.ndarray:
        """(4, 4) homogeneous transform from the sensor frame to the ego frame."""
        mat = np.eye(4)
        mat[:3, :3] = self.rotation.rotation_matrix
        mat[:3, 3] = self.translation
        return mat


# (translation in ego frame, yaw of the optical axis, focal length, principal point, capture offset in ms):
# positions, headings and focal lengths close to the nuScenes rig; offsets follow the LiDAR sweep order.
_CAMERA_LAYOUT: Dict[str, Tuple[Tuple[float, float, float], float, float, Tuple[float, float], float]] = {
    'CAM_FRONT': ((1.70, 0.016, 1.51), 0.0, 1266.4, (816.3, 491.5), 12.5),
    'CAM_FRONT_RIGHT': ((1.55, -0.493, 1.50), np.deg2rad(-55.0), 1260.5, (807.9, 495.3), 20.0),
    'CAM_FRONT_LEFT': ((1.52, 0.495, 1.51), np.deg2rad(55.0), 1272.6, (826.6, 479.8), 4.5),
    'CAM_BACK': ((0.028, 0.003, 1.58), np.pi, 809.2, (829.2, 481.8), 37.5),
    'CAM_BACK_LEFT': ((1.04, 0.485, 1.59), np.deg2rad(110.0), 1256.7, (817.8, 451.9), 45.0),
    'CAM_BACK_RIGHT': ((1.01, -0.480, 1.56), np.deg2rad(-110.0), 1259.5, (807.3, 501.2), 29.5),
}


def build_rig(image_size: Tuple[int, int] = (IMAGE_WIDTH, IMAGE_HEIGHT)) -> Dict[str, SensorCalibration]:
    """The LiDAR and six cameras. ``image_size`` (W, H) scales the intrinsics from 1600x900."""
    width, height = image_size
    scale_x, scale_y = width / IMAGE_WIDTH, height / IMAGE_HEIGHT
    rig = {
        LIDAR_NAME: SensorCalibration(LIDAR_NAME, 'lidar', np.array([0.94, 0.0, 1.84]), yaw_quaternion(-np.pi / 2)),
    }
    for name in CAMERA_NAMES:
        (tx, ty, tz), yaw, focal, (cx, cy), offset_ms = _CAMERA_LAYOUT[name]
        rot = yaw_quaternion(yaw).rotation_matrix @ _CAM_TO_FORWARD
        intrinsic = np.array([[focal * scale_x, 0.0, cx * scale_x], [0.0, focal * scale_y, cy * scale_y],
                              [0.0, 0.0, 1.0]])
        rig[name] = SensorCalibration(name, 'camera', np.array([tx, ty, tz]), Quaternion(matrix=rot), intrinsic,
                                      int(round(offset_ms * 1000)))
    return rig


@dataclass
class LidarPattern:
    """A spinning multi-beam LiDAR: elevation angles of the beams and the azimuth steps of one revolution."""
    num_beams: int = 32
    min_elevation_deg: float = -30.67
    max_elevation_deg: float = 10.67
    azimuth_steps: int = 1084
    min_range: float = 1.0
    max_range: float = 70.0

    def directions(self) -> Tuple[np.ndarray, np.ndarray]:
        """Unit ray directions in the LiDAR frame (N, 3) and the ring index of each ray (N,)."""
        elev = np.deg2rad(np.linspace(self.min_elevation_deg, self.max_elevation_deg, self.num_beams))
        azim = np.linspace(0.0, 2 * np.pi, self.azimuth_steps, endpoint=False)
        el, az = np.meshgrid(elev, azim, indexing='ij')
        dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
        rings = np.broadcast_to(np.arange(self.num_beams)[:, None], el.shape)
        return dirs.reshape(-1, 3), rings.reshape(-1).copy()


def camera_pixel_rays(intrinsic: np.ndarray, width: int, height: int) -> np.ndarray:
    """Unit ray directions (H, W, 3) in the camera frame through the pixel centres."""
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5, indexing='xy')
    pix = np.stack([u, v, np.ones_like(u)], axis=-1)
    rays = pix @ np.linalg.inv(intrinsic).T
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def pose_matrix(translation: np.ndarray, rotation: Quaternion) -> np.ndarray:
    """(4, 4) homogeneous matrix of a rotation and translation."""
    mat = np.eye(4)
    mat[:3, :3] = rotation.rotation_matrix
    mat[:3, 3] = translation
    return mat


def camera_names() -> List[str]:
    return list(CAMERA_NAMES)

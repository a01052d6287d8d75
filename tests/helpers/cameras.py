"""A nuScenes-like front camera for the image and global augmentation tests."""
from typing import Tuple

import numpy as np


def front_camera() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cam2img, lidar2cam, lidar2img) 4x4 of a front camera: LiDAR x forward, y left, z up -> camera x right,
    y down, z forward, 0.8 m ahead of and 0.3 m above the LiDAR."""
    lidar2cam = np.eye(4)
    lidar2cam[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]
    lidar2cam[:3, 3] = [0.0, -0.3, -0.8]
    cam2img = np.eye(4)
    cam2img[:3, :3] = [[1266.0, 0, 816.0], [0, 1266.0, 491.0], [0, 0, 1]]
    return cam2img, lidar2cam, cam2img @ lidar2cam

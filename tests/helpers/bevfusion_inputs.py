"""Synthetic inputs for the BEVFusion encoder / detector tests: a nuScenes-like 6-camera rig with consistent
matrices, random points inside the range, random images, a few ground-truth boxes."""
import contextlib
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

CAM_YAWS_DEG = (0.0, 55.0, -55.0, 180.0, 110.0, -110.0)  # FRONT, FRONT_LEFT, FRONT_RIGHT, BACK, ...
ORIG_SIZE = (900, 1600)  # (H, W) of the original images


def lidar2cam_matrix(yaw_deg: float, height: float = 1.5, offset: float = 0.5) -> np.ndarray:
    """4x4 LiDAR -> camera (x right, y down, z forward) for a camera looking along ``yaw`` at ``height``."""
    t = math.radians(yaw_deg)
    fwd = np.array([math.cos(t), math.sin(t), 0.0])
    right = np.array([math.sin(t), -math.cos(t), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    rot = np.stack([right, down, fwd])  # rows: camera axes in LiDAR coordinates
    centre = np.array([offset * math.cos(t), offset * math.sin(t), height])
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = -rot @ centre
    return out


def intrinsics(focal: float = 1266.0) -> np.ndarray:
    """4x4 cam2img of the original 1600x900 images."""
    k = np.eye(4)
    k[0, 0] = k[1, 1] = focal
    k[0, 2], k[1, 2] = ORIG_SIZE[1] / 2, ORIG_SIZE[0] / 2
    return k


def img_aug_matrix(image_size: Sequence[int]) -> np.ndarray:
    """Resize the original image to the network width and crop the bottom rows to the network height."""
    h, w = image_size
    s = w / ORIG_SIZE[1]
    aug = np.eye(4)
    aug[0, 0] = aug[1, 1] = s
    aug[1, 3] = -(ORIG_SIZE[0] * s - h)  # keep the bottom part of the image
    return aug


def camera_metas(image_size: Sequence[int], lidar_aug: np.ndarray = None) -> Dict[str, np.ndarray]:
    """Per-sample metas with the six cameras (keys as mmdet3d's BEVFusion pipelines write them)."""
    l2c = np.stack([lidar2cam_matrix(y) for y in CAM_YAWS_DEG])
    k = np.stack([intrinsics() for _ in CAM_YAWS_DEG])
    return dict(
        cam2img=k,
        lidar2cam=l2c,
        lidar2img=k @ l2c,
        cam2lidar=np.linalg.inv(l2c),
        img_aug_matrix=np.stack([img_aug_matrix(image_size) for _ in CAM_YAWS_DEG]),
        lidar_aug_matrix=np.eye(4) if lidar_aug is None else lidar_aug)


def random_points(num: int, gen: torch.Generator, pcr=(-54.0, -54.0, -5.0, 54.0, 54.0, 3.0)) -> torch.Tensor:
    """(num, 5) points (x, y, z, intensity, ring) uniform inside ``pcr`` (z in the lower half: near ground)."""
    lo = torch.tensor(pcr[:3])
    hi = torch.tensor([pcr[3], pcr[4], -1.0])
    xyz = lo + (hi - lo) * torch.rand(num, 3, generator=gen)
    extra = torch.rand(num, 2, generator=gen)
    return torch.cat([xyz, extra], dim=1)


def gt_boxes(num: int, gen: torch.Generator):
    """``num`` LiDARInstance3DBoxes with velocity (box_dim 9) and their labels in [0, 10)."""
    from mmdet3d.structures import LiDARInstance3DBoxes
    xy = (torch.rand(num, 2, generator=gen) - 0.5) * 60.0
    z = torch.full((num, 1), -1.8)
    dims = torch.tensor([4.5, 1.9, 1.6]) * (0.7 + 0.6 * torch.rand(num, 3, generator=gen))
    yaw = (torch.rand(num, 1, generator=gen) - 0.5) * 2 * math.pi
    vel = torch.randn(num, 2, generator=gen)
    boxes = LiDARInstance3DBoxes(torch.cat([xy, z, dims, yaw, vel], dim=1), box_dim=9)
    labels = torch.randint(0, 10, (num, ), generator=gen)
    return boxes, labels


def make_batch(image_size: Sequence[int], batch_size: int = 1, num_points: int = 3000, num_boxes: int = 3,
               with_points: bool = True, with_imgs: bool = True, seed: int = 0) -> dict:
    """A batch in the dataloader's format (``inputs``: ``points`` list and ``img`` list of (6, 3, H, W)
    0..255 float images; ``data_samples``: Det3DDataSample with camera metas and gt boxes), ready for
    ``model.data_preprocessor``."""
    from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(seed)
    inputs: Dict[str, List[torch.Tensor]] = {}
    samples = []
    if with_points:
        inputs['points'] = [random_points(num_points, gen) for _ in range(batch_size)]
    if with_imgs:
        inputs['img'] = [torch.rand(len(CAM_YAWS_DEG), 3, *image_size, generator=gen) * 255
                         for _ in range(batch_size)]
    for _ in range(batch_size):
        sample = Det3DDataSample()
        meta = camera_metas(image_size) if with_imgs else {}
        meta['box_type_3d'] = LiDARInstance3DBoxes
        sample.set_metainfo(meta)
        boxes, labels = gt_boxes(num_boxes, gen)
        sample.gt_instances_3d = InstanceData(bboxes_3d=boxes, labels_3d=labels)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def bev_cell(xy: Tuple[float, float], pcr_min: float = -54.0, cell: float = 0.6) -> Tuple[int, int]:
    """(x, y) metres -> (ix, iy) cell of a BEV grid with the given cell size."""
    return int(math.floor((xy[0] - pcr_min) / cell)), int(math.floor((xy[1] - pcr_min) / cell))


@contextlib.contextmanager
def torch_threads(num: int):
    """Run with ``num`` intra-op threads, then restore. Many tiny matmuls (sparse conv on CPU) slow down by
    an order of magnitude when the OpenMP threads of a shared machine are oversubscribed."""
    before = torch.get_num_threads()
    torch.set_num_threads(num)
    try:
        yield
    finally:
        torch.set_num_threads(before)

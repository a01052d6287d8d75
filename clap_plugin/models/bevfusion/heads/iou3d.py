"""3D IoU of LiDAR boxes on any device.

mmcv 2.1's ``boxes_overlap_bev`` (used by mmdet3d's ``BboxOverlaps3D``) has only a CUDA kernel. Here the
BEV intersection of rotated rectangles comes from mmcv's ``box_iou_rotated`` (CPU and CUDA kernels), and
the 3D IoU multiplies it by the overlap of the z intervals.
"""
import torch
from mmcv.ops import box_iou_rotated
from mmdet3d.registry import TASK_UTILS
from torch import Tensor


def lidar_bbox_overlaps_3d(bboxes1: Tensor, bboxes2: Tensor) -> Tensor:
    """Pairwise 3D IoU of LiDAR boxes.

    Args:
        bboxes1: (N, >=7) boxes ``(x, y, z_bottom, dx, dy, dz, yaw, ...)``; yaw counter-clockwise from
            +x (mmdet3d 1.x LiDAR convention).
        bboxes2: (M, >=7) boxes, same layout.

    Returns:
        (N, M) IoU in [0, 1].
    """
    if bboxes1.shape[-1] < 7 or bboxes2.shape[-1] < 7:
        raise ValueError('boxes need at least 7 values (x, y, z, dx, dy, dz, yaw), got '
                         f'{tuple(bboxes1.shape)} and {tuple(bboxes2.shape)}')
    n, m = bboxes1.shape[0], bboxes2.shape[0]
    if n == 0 or m == 0:
        return bboxes1.new_zeros((n, m))
    b1 = bboxes1[:, :7].float()
    b2 = bboxes2[:, :7].float()
    bev1 = b1[:, [0, 1, 3, 4, 6]].contiguous()
    bev2 = b2[:, [0, 1, 3, 4, 6]].contiguous()
    # 'iof' is intersection over the area of the first box: I = iof * A1
    # mmcv's default ``clockwise=True`` is clockwise in image axes (y down), i.e. counter-clockwise
    # with y up, which is the LiDAR yaw convention
    iof_bev = box_iou_rotated(bev1, bev2, mode='iof', clockwise=True)
    inter_bev = iof_bev * (b1[:, 3] * b1[:, 4])[:, None]

    top1 = (b1[:, 2] + b1[:, 5])[:, None]
    top2 = (b2[:, 2] + b2[:, 5])[None, :]
    inter_h = (torch.minimum(top1, top2) -
               torch.maximum(b1[:, 2][:, None], b2[:, 2][None, :])).clamp(min=0)
    inter = inter_bev * inter_h
    vol1 = (b1[:, 3] * b1[:, 4] * b1[:, 5])[:, None]
    vol2 = (b2[:, 3] * b2[:, 4] * b2[:, 5])[None, :]
    union = (vol1 + vol2 - inter).clamp(min=1e-6)
    return (inter / union).to(bboxes1.dtype)


@TASK_UTILS.register_module()
class CLAPBboxOverlaps3D:
    """IoU calculator (callable) over LiDAR boxes that runs on CPU and CUDA."""

    def __call__(self, bboxes1: Tensor, bboxes2: Tensor) -> Tensor:
        """(N, >=7), (M, >=7) -> (N, M) 3D IoU."""
        return lidar_bbox_overlaps_3d(bboxes1, bboxes2)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'

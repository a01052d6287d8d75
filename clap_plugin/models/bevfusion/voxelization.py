"""Hard voxelization in plain PyTorch, voxel coordinates in BEVFusion's (x, y, z) order.

Same semantics as the hard voxelization of mmcv / BEVFusion (deterministic mode): a point belongs to voxel
``floor((p - range_min) / voxel_size)``; points outside the range are dropped; voxels are numbered in the
order in which their first point appears; a voxel keeps its first ``max_num_points`` points; only the first
``max_voxels`` voxels are kept. Runs on any device (no custom op).
"""
from typing import Sequence, Tuple, Union

import torch
from torch import Tensor, nn


class HardVoxelization(nn.Module):
    """Group points into hard voxels.

    Args:
        voxel_size: (vx, vy, vz) in metres.
        point_cloud_range: (x_min, y_min, z_min, x_max, y_max, z_max).
        max_num_points: points kept per voxel.
        max_voxels: voxels kept per sample, either one int or (training, testing).
    """

    def __init__(self,
                 voxel_size: Sequence[float],
                 point_cloud_range: Sequence[float],
                 max_num_points: int,
                 max_voxels: Union[int, Sequence[int]] = 20000) -> None:
        super().__init__()
        if len(voxel_size) != 3:
            raise ValueError(f'voxel_size must have 3 values (x, y, z), got {voxel_size}')
        if len(point_cloud_range) != 6:
            raise ValueError(f'point_cloud_range must have 6 values, got {point_cloud_range}')
        if max_num_points <= 0:
            raise ValueError(f'max_num_points must be positive, got {max_num_points}')
        if isinstance(max_voxels, int):
            max_voxels = (max_voxels, max_voxels)
        if len(max_voxels) != 2:
            raise ValueError(f'max_voxels must be an int or (train, test), got {max_voxels}')
        self.voxel_size = [float(v) for v in voxel_size]
        self.point_cloud_range = [float(v) for v in point_cloud_range]
        self.max_num_points = int(max_num_points)
        self.max_voxels = tuple(int(v) for v in max_voxels)
        vs = torch.tensor(self.voxel_size, dtype=torch.float32)
        pcr = torch.tensor(self.point_cloud_range, dtype=torch.float32)
        #: number of voxels along (x, y, z)
        self.grid_size = [int(g) for g in torch.round((pcr[3:] - pcr[:3]) / vs).long().tolist()]

    def voxel_coords(self, points: Tensor) -> Tensor:
        """(N, C) points -> (N, 3) int64 voxel coordinates (x, y, z); -1 in every column when outside."""
        vs = points.new_tensor(self.voxel_size)
        lo = points.new_tensor(self.point_cloud_range[:3])
        grid = torch.tensor(self.grid_size, device=points.device)
        c = torch.floor((points[:, :3] - lo) / vs).long()
        inside = ((c >= 0) & (c < grid)).all(dim=1)
        return torch.where(inside[:, None], c, torch.full_like(c, -1))

    @torch.no_grad()
    def forward(self, points: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Voxelize one point cloud.

        Args:
            points: (N, C) points, columns x, y, z first.

        Returns:
            voxels: (M, max_num_points, C) points of each voxel, zero padded.
            coords: (M, 3) int32 voxel coordinates (x, y, z).
            num_points: (M,) int32 number of points in each voxel.
        """
        if points.dim() != 2 or points.shape[1] < 3:
            raise ValueError(f'points must be (N, C>=3), got shape {tuple(points.shape)}')
        max_voxels = self.max_voxels[0] if self.training else self.max_voxels[1]
        n, c = points.shape
        dev = points.device
        coords = self.voxel_coords(points)
        valid = coords[:, 0] >= 0
        idx = torch.nonzero(valid, as_tuple=False).squeeze(1)  # point indices, original order
        if idx.numel() == 0:
            return (points.new_zeros(0, self.max_num_points, c), torch.zeros(0, 3, dtype=torch.int32, device=dev),
                    torch.zeros(0, dtype=torch.int32, device=dev))
        gx, gy, gz = self.grid_size
        cv = coords[idx]
        key = (cv[:, 0] * gy + cv[:, 1]) * gz + cv[:, 2]
        uniq, inverse = torch.unique(key, return_inverse=True)
        # first appearance of each voxel -> voxel id by order of first appearance
        pos = torch.arange(idx.numel(), device=dev)
        first = torch.full((uniq.numel(), ), idx.numel(), dtype=torch.long, device=dev)
        first = first.scatter_reduce(0, inverse, pos, reduce='amin')
        order = torch.argsort(first)  # unique ids sorted by first appearance
        rank_of_uniq = torch.empty_like(order)
        rank_of_uniq[order] = torch.arange(order.numel(), device=dev)
        voxel_id = rank_of_uniq[inverse]  # (P,) voxel id of each valid point
        # slot of each point inside its voxel: number of earlier points with the same voxel id
        sort_idx = torch.sort(voxel_id * idx.numel() + pos).indices  # stable by voxel, then by point order
        sorted_vid = voxel_id[sort_idx]
        counts = torch.bincount(sorted_vid, minlength=uniq.numel())
        starts = torch.cumsum(counts, 0) - counts
        slot_sorted = torch.arange(sorted_vid.numel(), device=dev) - starts[sorted_vid]
        slot = torch.empty_like(slot_sorted)
        slot[sort_idx] = slot_sorted
        num_vox = min(uniq.numel(), max_voxels) if max_voxels >= 0 else uniq.numel()
        keep = (voxel_id < num_vox) & (slot < self.max_num_points)
        voxels = points.new_zeros(num_vox, self.max_num_points, c)
        voxels[voxel_id[keep], slot[keep]] = points[idx[keep]]
        num_points = counts[:num_vox].clamp(max=self.max_num_points).int()
        out_coords = cv[first[order[:num_vox]]].int()
        return voxels, out_coords, num_points

    def extra_repr(self) -> str:
        return (f'voxel_size={self.voxel_size}, point_cloud_range={self.point_cloud_range}, '
                f'max_num_points={self.max_num_points}, max_voxels={self.max_voxels}')

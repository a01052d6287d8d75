"""Hard voxelization in plain PyTorch against a naive loop and against mmcv's op (coordinates flipped)."""
import math

import pytest
import torch

from clap_plugin.models.bevfusion import HardVoxelization

PCR = [-2.0, -3.0, -1.0, 2.0, 3.0, 1.0]
VOXEL = [0.5, 0.75, 0.5]


def _points(n=2000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lo = torch.tensor(PCR[:3]) - 0.4  # some points outside the range
    hi = torch.tensor(PCR[3:]) + 0.4
    xyz = lo + (hi - lo) * torch.rand(n, 3, generator=gen)
    return torch.cat([xyz, torch.rand(n, 2, generator=gen)], dim=1)


def _naive(points, max_points, max_voxels):
    grid = [round((PCR[i + 3] - PCR[i]) / VOXEL[i]) for i in range(3)]
    voxels, coords, nums, index = [], [], [], {}
    for p in points.tolist():
        c = [math.floor((torch.tensor(p[i], dtype=torch.float32) - torch.tensor(PCR[i], dtype=torch.float32))
                        / torch.tensor(VOXEL[i], dtype=torch.float32)) for i in range(3)]
        if any(c[i] < 0 or c[i] >= grid[i] for i in range(3)):
            continue
        key = tuple(c)
        if key not in index:
            if len(coords) >= max_voxels:
                continue
            index[key] = len(coords)
            coords.append(c)
            voxels.append([])
        v = index[key]
        if len(voxels[v]) < max_points:
            voxels[v].append(p)
    out = torch.zeros(len(coords), max_points, points.shape[1])
    for v, pts in enumerate(voxels):
        out[v, :len(pts)] = torch.tensor(pts)
        nums.append(len(pts))
    return out, torch.tensor(coords, dtype=torch.int32), torch.tensor(nums, dtype=torch.int32)


@pytest.mark.parametrize('max_points,max_voxels', [(5, 1000), (3, 40)])
def test_hard_voxelization_equals_naive_loop(max_points, max_voxels):
    pts = _points()
    layer = HardVoxelization(VOXEL, PCR, max_points, max_voxels=(max_voxels, max_voxels))
    voxels, coords, nums = layer(pts)
    ref_v, ref_c, ref_n = _naive(pts, max_points, max_voxels)
    assert layer.grid_size == [8, 8, 4]
    assert torch.equal(coords, ref_c)
    assert torch.equal(nums, ref_n)
    assert torch.equal(voxels, ref_v)
    assert int(nums.max()) == max_points  # the per-voxel cap is exercised
    if max_voxels == 40:
        assert coords.shape[0] == 40  # the voxel cap is exercised


def test_hard_voxelization_matches_mmcv_op_in_xyz_order():
    from mmcv.ops import Voxelization
    pts = _points(n=3000, seed=1)
    ours = HardVoxelization(VOXEL, PCR, 4, max_voxels=(200, 200)).eval()
    theirs = Voxelization(VOXEL, PCR, 4, max_voxels=(200, 200), deterministic=True).eval()
    v1, c1, n1 = ours(pts)
    v2, c2, n2 = theirs(pts)  # mmcv: coordinates (z, y, x)
    assert torch.equal(c1, c2.flip(1).int())
    assert torch.equal(n1, n2.int())
    assert torch.equal(v1, v2)


def test_hard_voxelization_train_test_caps_and_errors():
    pts = _points()
    layer = HardVoxelization(VOXEL, PCR, 2, max_voxels=(10, 20))
    assert layer.train()(pts)[1].shape[0] == 10
    assert layer.eval()(pts)[1].shape[0] == 20
    empty = layer(torch.full((4, 5), 100.0))
    assert empty[0].shape == (0, 2, 5) and empty[1].shape == (0, 3)
    with pytest.raises(ValueError, match='voxel_size'):
        HardVoxelization([0.1, 0.1], PCR, 2)
    with pytest.raises(ValueError, match='points'):
        layer(torch.zeros(5))

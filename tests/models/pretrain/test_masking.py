"""Masking ratios of both modalities (arXiv 2412.03059, masked reconstruction; block / patch scheme of UniPAD)."""
import torch

from clap_plugin.models.pretrain.masking import lidar_block_ids, mask_image_patches, mask_lidar_blocks

PCR = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]


def test_lidar_blocks_drop_the_ratio_of_occupied_blocks():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(20000, 2, generator=g) * 40 - 20
    points = torch.cat([xy, torch.rand(20000, 3, generator=g)], 1)
    ids = lidar_block_ids(points[:, :2], PCR, (1.2, 1.2))
    occupied = torch.unique(ids)
    kept, keep = mask_lidar_blocks(points, PCR, (1.2, 1.2), 0.9, generator=g)
    kept_blocks = torch.unique(ids[keep])
    assert kept_blocks.numel() == occupied.numel() - round(0.9 * occupied.numel())
    # whole blocks: every point of a kept block is kept, none of a dropped block
    assert bool(torch.isin(ids, kept_blocks).eq(keep).all())
    assert kept.shape[0] == int(keep.sum()) and kept.shape[1] == 5


def test_lidar_block_size_is_one_bev_cell():
    pts = torch.tensor([[0.01, 0.01], [0.59, 0.59], [0.61, 0.01]])
    ids = lidar_block_ids(pts, PCR, (0.6, 0.6))
    assert ids[0] == ids[1] and ids[0] != ids[2]


def test_image_patches_zero_the_ratio_of_patches():
    g = torch.Generator().manual_seed(1)
    imgs = torch.randn(2, 6, 3, 128, 352, generator=g) + 5.0  # no natural zeros
    masked, patch_mask = mask_image_patches(imgs, 16, 0.9, generator=g)
    assert patch_mask.shape == (2, 6, 8, 22)
    per_image = patch_mask.flatten(2).sum(-1)
    assert bool((per_image == round(0.9 * 8 * 22)).all())
    zero = masked == 0
    expected = patch_mask.repeat_interleave(16, -2).repeat_interleave(16, -1).unsqueeze(2).expand_as(imgs)
    assert bool(zero.eq(expected).all())
    assert torch.equal(masked[~expected], imgs[~expected])

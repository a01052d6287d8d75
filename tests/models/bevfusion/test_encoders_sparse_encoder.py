"""BEVFusion sparse encoder: (x, y, z) sparse shape, BEV layout (B, C, X, Y), BEVFusion output sizes."""
import pytest
import torch

from clap_plugin.models.bevfusion import CLAPSparseEncoder
from tests.helpers.bevfusion_inputs import torch_threads

FULL = dict(in_channels=5, sparse_shape=[1440, 1440, 41], order=('conv', 'norm', 'act'),
            norm_cfg=dict(type='BN1d', eps=0.001, momentum=0.01),
            encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 128)),
            encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, (1, 1, 0)), (0, 0)), block_type='basicblock')


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Sparse convolutions on CPU run much faster single-threaded on a busy machine."""
    with torch_threads(1):
        yield


def _voxels(n, x_range, y_range, batch, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(*x_range, (n, ), generator=gen)
    y = torch.randint(*y_range, (n, ), generator=gen)
    z = torch.randint(0, 41, (n, ), generator=gen)
    coords = torch.unique(torch.stack([torch.full((n, ), batch), x, y, z], 1), dim=0)
    return torch.randn(coords.shape[0], 5, generator=gen), coords.int()


def test_full_size_encoder_keeps_x_in_dim2_and_y_in_dim3():
    enc = CLAPSparseEncoder(**FULL).eval()
    # sample 0: voxels with small x and large y; sample 1: the transpose
    f0, c0 = _voxels(400, (0, 80), (1200, 1280), batch=0)
    f1, c1 = _voxels(400, (1200, 1280), (0, 80), batch=1, seed=1)
    with torch.no_grad():
        bev = enc(torch.cat([f0, f1]), torch.cat([c0, c1]), 2)
    assert bev.shape == (2, 256, 180, 180)
    active0 = torch.nonzero(bev[0].abs().sum(0))
    active1 = torch.nonzero(bev[1].abs().sum(0))
    assert active0.numel() > 0 and active1.numel() > 0
    # x index / 8 in dim 2, y index / 8 in dim 3 (a margin of two cells for the kernels' reach)
    assert active0[:, 0].max() <= 80 // 8 + 2 and active0[:, 1].min() >= 1200 // 8 - 2
    assert active1[:, 0].min() >= 1200 // 8 - 2 and active1[:, 1].max() <= 80 // 8 + 2


def test_encoder_gradients_and_config_errors():
    cfg = dict(FULL, sparse_shape=[160, 160, 41], base_channels=8, output_channels=16,
               encoder_channels=((8, 8, 16), (16, 16, 32), (32, 32, 64), (64, 64)))
    enc = CLAPSparseEncoder(**cfg).train()
    feats, coords = _voxels(300, (0, 160), (0, 160), batch=0)
    feats.requires_grad_(True)
    bev = enc(feats, coords, 1)
    assert bev.shape == (1, 32, 20, 20)
    bev.sum().backward()
    assert feats.grad is not None and torch.count_nonzero(feats.grad) > 0
    with pytest.raises(ValueError, match='basic block'):
        CLAPSparseEncoder(**dict(cfg, encoder_channels=((8, 16, 16), (16, 16, 32), (32, 32, 64), (64, 64))))
    with pytest.raises(ValueError, match='block_type'):
        CLAPSparseEncoder(**dict(cfg, block_type='resnet'))
    with pytest.raises(ValueError, match='coors'):
        enc(feats, coords[:, 1:], 1)

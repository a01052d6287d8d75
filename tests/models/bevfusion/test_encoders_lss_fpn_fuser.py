"""Generalized LSS FPN (top-down fusion by concatenation) and ConvFuser."""
import pytest
import torch
import torch.nn.functional as F

from clap_plugin.models.bevfusion import CLAPConvFuser, CLAPGeneralizedLSSFPN


def _levels(channels=(12, 24, 48), size=(16, 44), requires_grad=True):
    gen = torch.Generator().manual_seed(0)
    h, w = size
    return [torch.randn(2, c, h // 2**i, w // 2**i, generator=gen).requires_grad_(requires_grad)
            for i, c in enumerate(channels)]


def test_lss_fpn_shapes_and_top_down_path():
    neck = CLAPGeneralizedLSSFPN([12, 24, 48], 16, num_outs=3,
                                 upsample_cfg=dict(mode='bilinear', align_corners=False)).eval()
    xs = _levels()
    outs = neck(xs)
    assert [tuple(o.shape) for o in outs] == [(2, 16, 16, 44), (2, 16, 8, 22)]
    # the finest output sees every level (coarsest through the top-down path), the second not the finest
    outs[0].sum().backward(retain_graph=True)
    assert all(x.grad is not None and torch.count_nonzero(x.grad) > 0 for x in xs)
    for x in xs:
        x.grad = None
    outs[1].sum().backward()
    assert xs[0].grad is None and torch.count_nonzero(xs[2].grad) > 0
    # the finest output is conv3x3(conv1x1(cat(level0, upsampled output of level 1)))
    with torch.no_grad():
        up = F.interpolate(outs[1], size=(16, 44), mode='bilinear', align_corners=False)
        ref = neck.fpn_convs[0](neck.lateral_convs[0](torch.cat([xs[0], up], 1)))
    torch.testing.assert_close(outs[0].detach(), ref)
    # the coarsest pair concatenates the raw level 2 (48 ch) with level 1 (24 ch)
    assert neck.lateral_convs[1].conv.in_channels == 24 + 48 and neck.lateral_convs[0].conv.in_channels == 12 + 16


def test_lss_fpn_errors():
    with pytest.raises(ValueError, match='num_outs'):
        CLAPGeneralizedLSSFPN([12, 24, 48], 16, num_outs=3, end_level=2)
    neck = CLAPGeneralizedLSSFPN([12, 24, 48], 16, num_outs=3)
    with pytest.raises(ValueError, match='3 input levels'):
        neck(_levels()[:2])


def test_conv_fuser_concatenates_in_order():
    fuser = CLAPConvFuser([3, 5], 4).eval()
    cam, lidar = torch.randn(1, 3, 6, 6), torch.randn(1, 5, 6, 6)
    out = fuser([cam, lidar])
    with torch.no_grad():
        ref = F.relu(fuser[1](F.conv2d(torch.cat([cam, lidar], 1), fuser[0].weight, padding=1)))
    torch.testing.assert_close(out, ref)
    assert fuser[0].bias is None and fuser[0].weight.shape == (4, 8, 3, 3)
    with pytest.raises(ValueError, match=r'\[3, 5\]'):
        fuser([lidar, cam])

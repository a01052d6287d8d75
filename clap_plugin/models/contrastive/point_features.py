"""Features at the two ends of a point-pixel pair.

* :func:`sample_bev_at_points`: a point's feature from a (C, X, Y) BEV map at its (x, y) (bilinear between the
  BEV cells around it, so a point reads its own cell).
* :func:`sample_pixel_features` / :class:`UpsamplingProjection`: PPKT's upsampling feature projection layer
  (1x1 conv to D, then bilinear upsampling to the input resolution), evaluated only at the paired pixels; the
  values are exactly those of the full upsampled map at the pixels (see the tests).
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sample_bev_at_points(bev: Tensor, xy: Tensor, point_cloud_range: Sequence[float]) -> Tensor:
    """Bilinear features (P, C) of a (C, X, Y) BEV map (dim 1 indexes x, dim 2 y) at points (P, 2) (x, y).

    Cell i spans ``[x0 + i s, x0 + (i + 1) s)``; a point at a cell centre reads that cell exactly.
    """
    if bev.dim() != 3:
        raise ValueError(f'bev must be (C, X, Y), got {tuple(bev.shape)}')
    x0, y0, _, x1, y1, _ = [float(v) for v in point_cloud_range]
    gx = (xy[:, 0] - x0) / (x1 - x0) * 2 - 1  # along dim 1 (H of grid_sample)
    gy = (xy[:, 1] - y0) / (y1 - y0) * 2 - 1  # along dim 2 (W of grid_sample)
    grid = torch.stack([gy, gx], -1).to(bev.dtype)[None, :, None]  # (1, P, 1, 2)
    out = F.grid_sample(bev[None], grid, mode='bilinear', padding_mode='border', align_corners=False)
    return out[0, :, :, 0].t()


def sample_pixel_features(feats: Tensor, img_idx: Tensor, uv: Tensor, image_size: Sequence[int]) -> Tensor:
    """Values (M, C) of ``F.interpolate(feats, size=image_size, mode='bilinear', align_corners=False)`` at the
    pixels containing ``uv`` (image ``img_idx``), without building the full-resolution maps.

    Args:
        feats: (N_img, C, h, w) low-resolution feature maps.
        img_idx: (M,) image of each query; uv: (M, 2) continuous (u, v) pixel coordinates.
        image_size: (H, W) pixel resolution of the images.
    """
    h_img, w_img = int(image_size[0]), int(image_size[1])
    col = uv[:, 0].floor().clamp(0, w_img - 1)
    row = uv[:, 1].floor().clamp(0, h_img - 1)
    grid = torch.stack([(col + 0.5) / w_img * 2 - 1, (row + 0.5) / h_img * 2 - 1], -1).to(feats.dtype)
    out = feats.new_zeros(uv.shape[0], feats.shape[1])
    for i in torch.unique(img_idx).tolist():
        sel = (img_idx == i).nonzero(as_tuple=True)[0]
        s = F.grid_sample(feats[i:i + 1], grid[sel][None, :, None], mode='bilinear', padding_mode='border',
                          align_corners=False)  # (1, C, m, 1)
        out = out.index_copy(0, sel, s[0, :, :, 0].t())
    return out


class UpsamplingProjection(nn.Module):
    """PPKT's upsampling feature projection layer: 1x1 conv C -> D, then bilinear upsampling to the input
    resolution. ``forward`` builds the full map; :meth:`sample` evaluates it only at given pixels (the 1x1
    conv commutes with bilinear interpolation, whose weights sum to one)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, feats: Tensor, image_size: Sequence[int]) -> Tensor:
        return F.interpolate(self.conv(feats), size=tuple(int(s) for s in image_size), mode='bilinear',
                             align_corners=False)

    def sample(self, feats: Tensor, img_idx: Tensor, uv: Tensor, image_size: Sequence[int]) -> Tensor:
        x = sample_pixel_features(feats, img_idx, uv, image_size)
        return F.linear(x, self.conv.weight.flatten(1), self.conv.bias)

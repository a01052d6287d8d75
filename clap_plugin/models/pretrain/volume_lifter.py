"""f3D: lift the fused BEV into the 3D feature volume that the rendering head samples (CLAP, arXiv 2412.03059)."""
from typing import List, Optional, Union

from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn


@MODELS.register_module()
class CLAPBEVVolumeLifter(BaseModule):
    """1x1 conv to C_r * Z channels, reshape to (C_r, Z, Y, X), then a shallow Conv3d stack.

    The BEV is (B, C, X, Y) (BEVFusion's layout); the volume is returned as (B, C_r, Z, Y, X), the layout of
    ``grid_sample`` (last axis x, then y, then z) that the rendering head interpolates.

    Args:
        in_channels: fused BEV channels (512).
        volume_channels: C_r (32).
        num_z: Z, voxels along z over the point-cloud range (5).
        num_conv3d: Conv3d (3x3x3) + BN + ReLU layers after the reshape.
    """

    def __init__(self, in_channels: int = 512, volume_channels: int = 32, num_z: int = 5, num_conv3d: int = 2,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if volume_channels < 1 or num_z < 1:
            raise ValueError(f'volume_channels and num_z must be >= 1, got {volume_channels}, {num_z}')
        self.volume_channels, self.num_z = int(volume_channels), int(num_z)
        self.lift = nn.Conv2d(in_channels, volume_channels * num_z, kernel_size=1)
        layers: List[nn.Module] = []
        for _ in range(num_conv3d):
            layers += [nn.Conv3d(volume_channels, volume_channels, 3, padding=1, bias=False),
                       nn.BatchNorm3d(volume_channels), nn.ReLU(inplace=True)]
        self.conv3d = nn.Sequential(*layers)

    def forward(self, bev: Tensor) -> Tensor:
        """(B, C, X, Y) -> (B, C_r, Z, Y, X)."""
        b, _, nx, ny = bev.shape
        vol = self.lift(bev).view(b, self.volume_channels, self.num_z, nx, ny).transpose(-1, -2)
        return self.conv3d(vol.contiguous())

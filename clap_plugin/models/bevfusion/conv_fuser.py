"""ConvFuser: concatenate per-modality BEV maps and mix them with a 3x3 conv + BN + ReLU."""
from typing import Optional, Sequence

import torch
from mmdet3d.registry import MODELS
from mmengine.model import Sequential
from torch import Tensor, nn


@MODELS.register_module()
class CLAPConvFuser(Sequential):
    """BEVFusion's ``ConvFuser`` (same parameter names: ``0`` conv without bias, ``1`` BatchNorm2d).

    Args:
        in_channels: channels of each input BEV, in the order the inputs are given (camera first in
            BEVFusion: [80, 256]).
        out_channels: channels of the fused BEV.
        init_cfg: mmengine init config.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, init_cfg: Optional[dict] = None) -> None:
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        super().__init__(
            nn.Conv2d(sum(self.in_channels), out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(True),
            init_cfg=init_cfg)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Args: inputs: BEV maps (B, C_i, H, W). Returns: (B, out_channels, H, W)."""
        channels = [x.shape[1] for x in inputs]
        if channels != self.in_channels:
            raise ValueError(f'CLAPConvFuser expects inputs with channels {self.in_channels}, got {channels}')
        return super().forward(torch.cat(list(inputs), dim=1))

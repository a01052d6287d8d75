"""Generalized LSS FPN: BEVFusion's image neck (upsample, concatenate, 1x1 conv, 3x3 conv, top-down)."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn


@MODELS.register_module()
class CLAPGeneralizedLSSFPN(BaseModule):
    """Top-down FPN that fuses levels by concatenation (BEVFusion's ``GeneralizedLSSFPN``).

    Going from the coarsest level down, level ``i`` is concatenated with the upsampled output of level
    ``i + 1`` (for the coarsest pair: the raw level ``i + 1``), then passed through a 1x1 ``lateral_convs[i]``
    and a 3x3 ``fpn_convs[i]``. With inputs of 192/384/768 channels and ``out_channels=256`` the outputs are
    two maps of 256 channels at strides 8 and 16.

    Args:
        in_channels: channels of each input level (finest first).
        out_channels: channels of every output.
        num_outs: number of outputs requested (kept for config compatibility; the neck returns
            ``end_level - start_level`` maps).
        start_level: first input level used.
        end_level: last input level (exclusive), -1 for all levels.
        no_norm_on_lateral: no norm layer in the 1x1 convs.
        conv_cfg, norm_cfg, act_cfg: layer configs of the conv modules.
        upsample_cfg: keyword arguments of ``F.interpolate`` (``mode``, ``align_corners``).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 end_level: int = -1,
                 no_norm_on_lateral: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='BN2d'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 upsample_cfg: Optional[dict] = dict(mode='bilinear', align_corners=True),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        if len(in_channels) < 2:
            raise ValueError(f'in_channels needs at least two levels, got {in_channels}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.upsample_cfg = dict(upsample_cfg or {})
        if end_level == -1:
            self.backbone_end_level = self.num_ins - 1
        else:
            if end_level > self.num_ins:
                raise ValueError(f'end_level={end_level} exceeds the {self.num_ins} input levels')
            if num_outs != end_level - start_level:
                raise ValueError(f'num_outs={num_outs} must equal end_level - start_level '
                                 f'= {end_level - start_level}')
            self.backbone_end_level = end_level
        self.start_level = start_level
        self.end_level = end_level

        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            extra = in_channels[i + 1] if i == self.backbone_end_level - 1 else out_channels
            self.lateral_convs.append(ConvModule(
                in_channels[i] + extra, out_channels, 1, conv_cfg=conv_cfg,
                norm_cfg=None if no_norm_on_lateral else norm_cfg, act_cfg=act_cfg, inplace=False))
            self.fpn_convs.append(ConvModule(
                out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                act_cfg=act_cfg, inplace=False))

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Args: inputs: per-level (N, C_i, H_i, W_i) maps, finest first.

        Returns: ``len(lateral_convs)`` maps of (N, out_channels, H_i, W_i), finest first.
        """
        if len(inputs) != self.num_ins:
            raise ValueError(f'expected {self.num_ins} input levels, got {len(inputs)}')
        feats: List[Tensor] = list(inputs[self.start_level:])
        for i in range(len(self.lateral_convs) - 1, -1, -1):
            up = F.interpolate(feats[i + 1], size=feats[i].shape[2:], **self.upsample_cfg)
            x = torch.cat([feats[i], up], dim=1)
            feats[i] = self.fpn_convs[i](self.lateral_convs[i](x))
        return tuple(feats[:len(self.lateral_convs)])

"""BEVFusion's sparse 3D encoder: voxel features -> LiDAR BEV, sparse shape in (x, y, z) order."""
from typing import List, Optional, Sequence, Tuple, Union

from mmdet3d.models.layers import SparseBasicBlock, make_sparse_convmodule
from mmdet3d.models.layers.spconv import IS_SPCONV2_AVAILABLE
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from .spconv_compat import patch_spconv_cuda_stream

if IS_SPCONV2_AVAILABLE:
    from spconv.pytorch import SparseConvTensor, SparseSequential
else:  # pragma: no cover - mmcv's sparse ops (CUDA only)
    from mmcv.ops import SparseConvTensor, SparseSequential

patch_spconv_cuda_stream()  # sparse-conv backward on CPU-only torch builds


@MODELS.register_module()
class CLAPSparseEncoder(BaseModule):
    """Sparse convolutional encoder whose voxel grid is indexed (x, y, z), as BEVFusion's voxelization is.

    Parameter names and shapes equal those of BEVFusion's ``BEVFusionSparseEncoder``: ``conv_input``, the
    stages ``encoder_layers.encoder_layer{i}`` and ``conv_out`` (kernel (1, 1, 3), stride (1, 1, 2): it
    halves z).

    Args:
        in_channels: channels of the voxel features.
        sparse_shape: (X, Y, Z) voxel grid size.
        order: order of conv, norm and act in each conv module.
        norm_cfg: norm layer config.
        base_channels: channels of ``conv_input``.
        output_channels: channels of ``conv_out``; the BEV has ``output_channels * Z_out`` channels.
        encoder_channels: channels of each block of each stage.
        encoder_paddings: padding of each block of each stage.
        block_type: ``'conv_module'`` or ``'basicblock'``.
        return_middle_feats: also return the sparse output of each stage.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_channels: int,
                 sparse_shape: Sequence[int],
                 order: Tuple[str, str, str] = ('conv', 'norm', 'act'),
                 norm_cfg: Optional[dict] = None,
                 base_channels: int = 16,
                 output_channels: int = 128,
                 encoder_channels: Sequence[Sequence[int]] = ((16, ), (32, 32, 32), (64, 64, 64), (64, 64, 64)),
                 encoder_paddings: Sequence[Sequence] = ((1, ), (1, 1, 1), (1, 1, 1), ((0, 1, 1), 1, 1)),
                 block_type: str = 'conv_module',
                 return_middle_feats: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if block_type not in ('conv_module', 'basicblock'):
            raise ValueError(f"block_type must be 'conv_module' or 'basicblock', got {block_type!r}")
        order = tuple(order)
        if len(order) != 3 or set(order) != {'conv', 'norm', 'act'}:
            raise ValueError(f"order must be a permutation of ('conv', 'norm', 'act'), got {order}")
        if len(sparse_shape) != 3:
            raise ValueError(f'sparse_shape must be (X, Y, Z), got {sparse_shape}')
        if len(encoder_paddings) != len(encoder_channels):
            raise ValueError(f'encoder_paddings ({len(encoder_paddings)} stages) must match '
                             f'encoder_channels ({len(encoder_channels)} stages)')
        if norm_cfg is None:
            norm_cfg = dict(type='BN1d', eps=1e-3, momentum=0.01)
        self.sparse_shape = list(sparse_shape)
        self.in_channels = in_channels
        self.order = order
        self.base_channels = base_channels
        self.output_channels = output_channels
        self.encoder_channels = encoder_channels
        self.encoder_paddings = encoder_paddings
        self.return_middle_feats = return_middle_feats

        self.conv_input = make_sparse_convmodule(
            in_channels, base_channels, 3, norm_cfg=norm_cfg, padding=1, indice_key='subm1',
            conv_type='SubMConv3d', order=order if order[0] == 'conv' else ('conv', ))
        self.encoder_layers = SparseSequential()
        channels = base_channels
        num_stages = len(encoder_channels)
        for i, blocks in enumerate(encoder_channels):
            layers = []
            for j, out_channels in enumerate(blocks):
                padding = tuple(encoder_paddings[i])[j]
                if block_type == 'conv_module':
                    if i != 0 and j == 0:  # every stage but the first starts by downsampling
                        layers.append(make_sparse_convmodule(
                            channels, out_channels, 3, norm_cfg=norm_cfg, stride=2, padding=padding,
                            indice_key=f'spconv{i + 1}', conv_type='SparseConv3d', order=order))
                    else:
                        layers.append(make_sparse_convmodule(
                            channels, out_channels, 3, norm_cfg=norm_cfg, padding=padding,
                            indice_key=f'subm{i + 1}', conv_type='SubMConv3d', order=order))
                elif j == len(blocks) - 1 and i != num_stages - 1:  # basic blocks, stage ends downsampling
                    layers.append(make_sparse_convmodule(
                        channels, out_channels, 3, norm_cfg=norm_cfg, stride=2, padding=padding,
                        indice_key=f'spconv{i + 1}', conv_type='SparseConv3d', order=order))
                else:
                    if channels != out_channels:
                        raise ValueError(f'basicblock stage {i} block {j}: in channels {channels} != out '
                                         f'channels {out_channels} (a basic block keeps its width)')
                    layers.append(SparseBasicBlock(
                        out_channels, out_channels, norm_cfg=norm_cfg,
                        conv_cfg=dict(type='SubMConv3d', indice_key=f'subm{i + 1}')))
                channels = out_channels
            self.encoder_layers.add_module(f'encoder_layer{i + 1}', SparseSequential(*layers))
        self.conv_out = make_sparse_convmodule(
            channels, output_channels, kernel_size=(1, 1, 3), stride=(1, 1, 2), norm_cfg=norm_cfg, padding=0,
            indice_key='spconv_down2', conv_type='SparseConv3d', order=order)

    def forward(self, voxel_features: Tensor, coors: Tensor,
                batch_size: int) -> Union[Tensor, Tuple[Tensor, List[SparseConvTensor]]]:
        """Encode voxels to a BEV map.

        Args:
            voxel_features: (M, C_in) voxel features.
            coors: (M, 4) voxel coordinates (batch, x, y, z).
            batch_size: B.

        Returns:
            (B, output_channels * Z_out, X_out, Y_out) BEV features (and the stage outputs when
            ``return_middle_feats``).
        """
        if coors.dim() != 2 or coors.shape[1] != 4:
            raise ValueError(f'coors must be (M, 4) = (batch, x, y, z), got shape {tuple(coors.shape)}')
        x = SparseConvTensor(voxel_features, coors.int(), self.sparse_shape, int(batch_size))
        x = self.conv_input(x)
        middle = []
        for stage in self.encoder_layers:
            x = stage(x)
            middle.append(x)
        dense = self.conv_out(x).dense()  # (B, C, X, Y, Z)
        b, c, nx, ny, nz = dense.shape
        bev = dense.permute(0, 1, 4, 2, 3).reshape(b, c * nz, nx, ny)  # channels ordered (C, Z)
        if self.return_middle_feats:
            return bev, middle
        return bev

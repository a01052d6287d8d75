"""TransFusion decoder layer: self-attention among object queries, cross-attention into the BEV map.

Queries and keys carry learned position embeddings of their BEV cell coordinates. As in TransFusion /
BEVFusion the attention *values* also include the position embedding (``value = x + pos``), and the
residual branch uses the queries without it. Parameter names equal mmdet3d's BEVFusion
``TransformerDecoderLayer`` (``self_attn``, ``cross_attn``, ``ffn``, ``norms``, ``self_posembed``,
``cross_posembed``) so checkpoints are interchangeable.
"""
from typing import Optional

from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn


class CLAPLearnedPositionEncoding(nn.Module):
    """Per-point MLP ``Conv1d -> BN1d -> ReLU -> Conv1d`` from coordinates to embeddings.

    Args:
        input_channel: number of coordinates (2 for BEV cells).
        num_pos_feats: embedding width.
    """

    def __init__(self, input_channel: int = 2, num_pos_feats: int = 128) -> None:
        super().__init__()
        self.position_embedding_head = nn.Sequential(
            nn.Conv1d(input_channel, num_pos_feats, kernel_size=1),
            nn.BatchNorm1d(num_pos_feats),
            nn.ReLU(inplace=True),
            nn.Conv1d(num_pos_feats, num_pos_feats, kernel_size=1))

    def forward(self, coords: Tensor) -> Tensor:
        """(B, P, input_channel) coordinates -> (B, num_pos_feats, P) embeddings."""
        return self.position_embedding_head(coords.transpose(1, 2).contiguous())


@MODELS.register_module()
class CLAPTransformerDecoderLayer(BaseModule):
    """One decoder layer of the TransFusion head.

    Args:
        self_attn_cfg: kwargs of mmcv ``MultiheadAttention`` for query self-attention.
        cross_attn_cfg: kwargs of mmcv ``MultiheadAttention`` for query-to-BEV attention.
        ffn_cfg: kwargs of mmcv ``FFN``.
        norm_cfg: norm config (three norms, after each sub-block).
        pos_encoding_cfg: kwargs of :class:`CLAPLearnedPositionEncoding`.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 self_attn_cfg: dict = dict(embed_dims=128, num_heads=8, dropout=0.1),
                 cross_attn_cfg: dict = dict(embed_dims=128, num_heads=8, dropout=0.1),
                 ffn_cfg: dict = dict(embed_dims=128, feedforward_channels=256, num_fcs=2,
                                      ffn_drop=0.1, act_cfg=dict(type='ReLU', inplace=True)),
                 norm_cfg: dict = dict(type='LN'),
                 pos_encoding_cfg: dict = dict(input_channel=2, num_pos_feats=128),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, cfg in (('self_attn_cfg', self_attn_cfg), ('cross_attn_cfg', cross_attn_cfg)):
            if not cfg.get('batch_first', True):
                raise ValueError(f'{name}: batch_first must be True')
        self.self_attn = MultiheadAttention(**dict(self_attn_cfg, batch_first=True))
        self.cross_attn = MultiheadAttention(**dict(cross_attn_cfg, batch_first=True))
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**ffn_cfg)
        self.norms = nn.ModuleList(
            [build_norm_layer(norm_cfg, self.embed_dims)[1] for _ in range(3)])
        self.self_posembed = CLAPLearnedPositionEncoding(**pos_encoding_cfg)
        self.cross_posembed = CLAPLearnedPositionEncoding(**pos_encoding_cfg)

    def forward(self, query: Tensor, key: Tensor, query_pos: Tensor, key_pos: Tensor,
                key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Update the queries.

        Args:
            query: (B, C, P) query features.
            key: (B, C, HW) flattened BEV features.
            query_pos: (B, P, 2) query BEV cell coordinates.
            key_pos: (B, HW, 2) BEV cell coordinates of the keys.
            key_padding_mask: optional (B, HW) bool mask of ignored keys.

        Returns:
            (B, C, P) updated query features.
        """
        q_embed = self.self_posembed(query_pos).transpose(1, 2)  # (B, P, C)
        k_embed = self.cross_posembed(key_pos).transpose(1, 2)  # (B, HW, C)
        x = query.transpose(1, 2)
        k = key.transpose(1, 2)
        x = self.self_attn(query=x, key=x, value=x + q_embed,
                           query_pos=q_embed, key_pos=q_embed)
        x = self.norms[0](x)
        x = self.cross_attn(query=x, key=k, value=k + k_embed, query_pos=q_embed,
                            key_pos=k_embed, key_padding_mask=key_padding_mask)
        x = self.norms[1](x)
        x = self.norms[2](self.ffn(x))
        return x.transpose(1, 2)

"""Learnable prototypes with swapped assignment prediction between LiDAR and camera (CLAP, SPEC 4.5).

P~ = normalise(proj_L(P)), I~ = normalise(proj_C(I)) per BEV cell, S_P = P~ K^T, S_I = I~ K^T with
row-normalised prototypes K. Codes Q_P, Q_I by Sinkhorn-Knopp on the detached scores (global batch).
L_swap = -mean[Q_I . log softmax(S_P / tau) + Q_P . log softmax(S_I / tau)];
L_EM = -mean sum softmax(S / tau_em) log softmax(S / tau_em) over both modalities (assignment certainty).
The detached embeddings of the last call are kept in ``last_embeddings`` for the prototype EM hook.
"""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from .sinkhorn import sinkhorn_knopp


def _projection_mlp(in_channels: int, hidden: int, out_channels: int, layers: int) -> nn.Sequential:
    if layers < 1:
        raise ValueError(f'projection layers must be >= 1, got {layers}')
    dims = [in_channels] + [hidden] * (layers - 1) + [out_channels]
    mods: List[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(dims[i], dims[i + 1]))
        if i < layers - 1:
            mods += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU(inplace=True)]
    return nn.Sequential(*mods)


@MODELS.register_module()
class SwappedPrototypeLoss(BaseModule):
    """Projection heads, prototypes, Sinkhorn codes, swapped prediction and EM certainty losses.

    Args:
        lidar_channels: channels of the LiDAR BEV features P (256).
        camera_channels: channels of the camera BEV features I (80).
        embed_dim: d_K (128).
        num_prototypes: N_K (512).
        hidden_channels: hidden width of the projection MLPs.
        proj_layers: linear layers of each projection MLP.
        temperature: tau of the swapped prediction (paper 1.0; SwAV 0.1).
        em_temperature: temperature of the soft assignments of the EM certainty term (default ``temperature``).
        sinkhorn_epsilon: epsilon of Q ~ exp(S / epsilon) (0.05).
        sinkhorn_iterations: Sinkhorn iterations (3).
        loss_swap_weight, loss_em_weight: weights of L_swap (1.0) and L_EM (0.1).
    """

    def __init__(self, lidar_channels: int = 256, camera_channels: int = 80, embed_dim: int = 128,
                 num_prototypes: int = 512, hidden_channels: int = 256, proj_layers: int = 2,
                 temperature: float = 1.0, em_temperature: Optional[float] = None, sinkhorn_epsilon: float = 0.05,
                 sinkhorn_iterations: int = 3, loss_swap_weight: float = 1.0, loss_em_weight: float = 0.1,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if num_prototypes < 2:
            raise ValueError(f'num_prototypes must be >= 2, got {num_prototypes}')
        self.lidar_proj = _projection_mlp(lidar_channels, hidden_channels, embed_dim, proj_layers)
        self.camera_proj = _projection_mlp(camera_channels, hidden_channels, embed_dim, proj_layers)
        self.prototypes = nn.Parameter(F.normalize(torch.randn(num_prototypes, embed_dim), dim=-1))
        self.temperature = float(temperature)
        self.em_temperature = float(em_temperature) if em_temperature is not None else self.temperature
        self.sinkhorn_epsilon = float(sinkhorn_epsilon)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.loss_swap_weight = float(loss_swap_weight)
        self.loss_em_weight = float(loss_em_weight)
        self.last_embeddings: Dict[str, Tensor] = {}

    def embed(self, lidar_feats: Tensor, camera_feats: Tensor) -> Dict[str, Tensor]:
        """(M, C_L), (M, C_I) paired cell features -> unit embeddings ``lidar``, ``camera`` (M, d_K)."""
        if lidar_feats.dim() != 2 or camera_feats.dim() != 2 or lidar_feats.shape[0] != camera_feats.shape[0]:
            raise ValueError('lidar_feats and camera_feats must be (M, C) with the same M, got '
                             f'{tuple(lidar_feats.shape)} and {tuple(camera_feats.shape)}')
        return dict(lidar=F.normalize(self.lidar_proj(lidar_feats), dim=-1),
                    camera=F.normalize(self.camera_proj(camera_feats), dim=-1))

    def forward(self, lidar_feats: Tensor, camera_feats: Tensor) -> Dict[str, Tensor]:
        """Losses ``loss_swap`` and ``loss_em`` (weighted) of M paired cells.

        Args:
            lidar_feats: (M, C_L) LiDAR BEV features of the selected cells.
            camera_feats: (M, C_I) camera BEV features of the same cells.
        """
        emb = self.embed(lidar_feats, camera_feats)
        self.last_embeddings = {k: v.detach() for k, v in emb.items()}
        protos = F.normalize(self.prototypes, dim=-1)
        s_p = emb['lidar'] @ protos.t()
        s_i = emb['camera'] @ protos.t()
        q_p = sinkhorn_knopp(s_p, self.sinkhorn_epsilon, self.sinkhorn_iterations)
        q_i = sinkhorn_knopp(s_i, self.sinkhorn_epsilon, self.sinkhorn_iterations)
        swap = -((q_i * F.log_softmax(s_p / self.temperature, dim=-1)).sum(-1)
                 + (q_p * F.log_softmax(s_i / self.temperature, dim=-1)).sum(-1)).mean()

        def entropy(s: Tensor) -> Tensor:
            logp = F.log_softmax(s / self.em_temperature, dim=-1)
            return -(logp.exp() * logp).sum(-1).mean()

        em = 0.5 * (entropy(s_p) + entropy(s_i))
        return dict(loss_swap=self.loss_swap_weight * swap, loss_em=self.loss_em_weight * em)

"""Learnable prototypes with swapped assignment prediction between LiDAR and camera (CLAP,
arXiv 2412.03059).

P~ = normalise(proj_L(P)), I~ = normalise(proj_C(I)) per BEV cell, S_P = P~ K^T, S_I = I~ K^T with
row-normalised prototypes K. Codes Q_P, Q_I by Sinkhorn-Knopp on the detached scores (global batch).
L_swap = -mean[Q_I . log softmax(S_P / tau) + Q_P . log softmax(S_I / tau)];
L_EM = -mean sum softmax(S / tau_em) log softmax(S / tau_em) over both modalities (assignment certainty: the
paper's M-step, a loss; its E-step is the softmax).

The prototypes are learned by the gradients of L_swap, L_EM and the Gram term alone (one owner); the EM hook
only re-normalises them, freezes them (``PrototypeState.frozen``: their gradient is dropped) and re-seeds dead
ones; it talks to this module through :attr:`SwappedPrototypeLoss.prototype_state` alone.

Temperature: on cosine scores in [-1, 1] a temperature of 1 (the paper's value) lets each direction's
cross-entropy move only between about ln N_K - 1 and ln N_K nats, so the swap gradient is weak; SwAV's 0.1
gives the term its full range. Both are config values.

Besides the losses, :meth:`forward` returns figures that a collapse cannot hide (hard assignments, not soft
averages): ``proto_hard_ppl_lidar`` / ``proto_hard_ppl_camera`` (perplexity of the argmax prototype over the
cells), ``proto_swap_agree`` (share of cells whose argmax LiDAR score names the argmax of the camera codes,
and vice versa), ``proto_swap_chance`` (the agreement two independent assignments with these marginals would
reach) and ``proto_cos_offdiag`` (mean off-diagonal cosine of the prototypes).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from .gram_regularizer import gram_off_diagonal_mean
from .prototype_state import PrototypeState
from .sinkhorn import sinkhorn_knopp


def hard_perplexity(assign: Tensor, num_prototypes: int) -> Tensor:
    """exp(entropy) of the histogram of (M,) argmax assignments over ``num_prototypes`` (1 .. N_K)."""
    if assign.numel() == 0:
        return torch.ones((), device=assign.device)
    p = torch.bincount(assign, minlength=num_prototypes).float() / assign.numel()
    return torch.exp(-(p * p.clamp(min=1e-12).log()).sum())


def swap_agreement(score_lidar: Tensor, score_camera: Tensor, code_lidar: Tensor, code_camera: Tensor,
                   num_prototypes: int):
    """Hard swap agreement of (M,) argmax prototypes and its chance level.

    Agreement: the share of cells whose argmax LiDAR score names the argmax of the camera code, averaged with
    the camera-score / LiDAR-code direction. Chance: the same for assignments drawn independently with these
    marginals, sum_k P(score = k) P(code = k), averaged over the two directions.
    """
    def freq(a: Tensor) -> Tensor:
        return torch.bincount(a, minlength=num_prototypes).float() / max(a.numel(), 1)

    agree = 0.5 * ((score_lidar == code_camera).float().mean() + (score_camera == code_lidar).float().mean())
    chance = 0.5 * ((freq(score_lidar) * freq(code_camera)).sum() + (freq(score_camera) * freq(code_lidar)).sum())
    return agree, chance


@dataclass
class PrototypeTerms:
    """What one call of the prototype losses produced: weighted losses, detached figures and assignments."""
    loss_swap: Tensor
    loss_em: Tensor
    figures: Dict[str, Tensor]
    assignments: Dict[str, Tensor]  # (M,) argmax prototype per modality


def prototype_terms(emb_lidar: Tensor, emb_camera: Tensor, prototypes: Tensor, temperature: float,
                    em_temperature: float, sinkhorn_epsilon: float = 0.05, sinkhorn_iterations: int = 3,
                    loss_swap_weight: float = 1.0, loss_em_weight: float = 0.1) -> PrototypeTerms:
    """Swap and EM losses of (M, d_K) unit embeddings of both modalities against (N_K, d_K) prototypes."""
    protos = F.normalize(prototypes, dim=-1)
    s_p = emb_lidar @ protos.t()
    s_i = emb_camera @ protos.t()
    q_p = sinkhorn_knopp(s_p, sinkhorn_epsilon, sinkhorn_iterations)
    q_i = sinkhorn_knopp(s_i, sinkhorn_epsilon, sinkhorn_iterations)
    swap = -((q_i * F.log_softmax(s_p / temperature, dim=-1)).sum(-1)
             + (q_p * F.log_softmax(s_i / temperature, dim=-1)).sum(-1)).mean()

    def entropy(s: Tensor) -> Tensor:
        logp = F.log_softmax(s / em_temperature, dim=-1)
        return -(logp.exp() * logp).sum(-1).mean()

    em = 0.5 * (entropy(s_p) + entropy(s_i))
    with torch.no_grad():
        n_k = protos.shape[0]
        a_p, a_i = s_p.argmax(-1), s_i.argmax(-1)
        agree, chance = swap_agreement(a_p, a_i, q_p.argmax(-1), q_i.argmax(-1), n_k)
        figures = dict(proto_hard_ppl_lidar=hard_perplexity(a_p, n_k), proto_hard_ppl_camera=hard_perplexity(a_i, n_k),
                       proto_swap_agree=agree, proto_swap_chance=chance,
                       proto_cos_offdiag=gram_off_diagonal_mean(protos.detach()))
    return PrototypeTerms(loss_swap=loss_swap_weight * swap, loss_em=loss_em_weight * em, figures=figures,
                          assignments=dict(lidar=a_p, camera=a_i))


def _projection_mlp(in_channels: int, hidden: int, out_channels: int, layers: int,
                    center: bool = False) -> nn.Sequential:
    """Linear (-BN-ReLU-Linear)* projection; ``center`` appends a BN without affine (centred output)."""
    if layers < 1:
        raise ValueError(f'projection layers must be >= 1, got {layers}')
    dims = [in_channels] + [hidden] * (layers - 1) + [out_channels]
    mods: List[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(dims[i], dims[i + 1]))
        if i < layers - 1:
            mods += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU(inplace=True)]
    if center:
        mods.append(nn.BatchNorm1d(out_channels, affine=False))
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
        temperature: tau of the swapped prediction (paper 1.0; SwAV 0.1, see the module docstring).
        em_temperature: temperature of the soft assignments of the EM certainty term (default ``temperature``).
        sinkhorn_epsilon: epsilon of Q ~ exp(S / epsilon) (0.05).
        sinkhorn_iterations: Sinkhorn iterations (3).
        loss_swap_weight, loss_em_weight: weights of L_swap (1.0) and L_EM (0.1).
        center_embeddings: end each projection with a BN without affine parameters, so that the cells'
            embeddings have no common mean before the L2 normalisation. BEV features after ReLUs share a
            large mean component; on the unit sphere that puts every cell near one direction, so the
            argmax assignments pile onto a few prototypes and any prototype seeded from the embeddings is
            close to all others. Centring removes that component at every step (the paper does not
            describe its projection heads; this is the project's choice).
    """

    def __init__(self, lidar_channels: int = 256, camera_channels: int = 80, embed_dim: int = 128,
                 num_prototypes: int = 512, hidden_channels: int = 256, proj_layers: int = 2,
                 temperature: float = 1.0, em_temperature: Optional[float] = None, sinkhorn_epsilon: float = 0.05,
                 sinkhorn_iterations: int = 3, loss_swap_weight: float = 1.0, loss_em_weight: float = 0.1,
                 center_embeddings: bool = True, init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if num_prototypes < 2:
            raise ValueError(f'num_prototypes must be >= 2, got {num_prototypes}')
        self.lidar_proj = _projection_mlp(lidar_channels, hidden_channels, embed_dim, proj_layers, center_embeddings)
        self.camera_proj = _projection_mlp(camera_channels, hidden_channels, embed_dim, proj_layers,
                                           center_embeddings)
        self.prototypes = nn.Parameter(F.normalize(torch.randn(num_prototypes, embed_dim), dim=-1))
        self.temperature = float(temperature)
        self.em_temperature = float(em_temperature) if em_temperature is not None else self.temperature
        self.sinkhorn_epsilon = float(sinkhorn_epsilon)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.loss_swap_weight = float(loss_swap_weight)
        self.loss_em_weight = float(loss_em_weight)
        self._prototype_state = PrototypeState(self.prototypes)

    @property
    def prototype_state(self) -> PrototypeState:
        """The state shared with the EM hook (its ``prototypes`` is this module's parameter)."""
        self._prototype_state.prototypes = self.prototypes  # the same parameter, also after a module swap
        return self._prototype_state

    def prototype_matrix(self) -> Tensor:
        """(N_K, d_K) prototypes as the losses see them: detached while frozen."""
        return self.prototypes.detach() if self._prototype_state.frozen else self.prototypes

    def embed(self, lidar_feats: Tensor, camera_feats: Tensor) -> Dict[str, Tensor]:
        """(M, C_L), (M, C_I) paired cell features -> unit embeddings ``lidar``, ``camera`` (M, d_K)."""
        if lidar_feats.dim() != 2 or camera_feats.dim() != 2 or lidar_feats.shape[0] != camera_feats.shape[0]:
            raise ValueError('lidar_feats and camera_feats must be (M, C) with the same M, got '
                             f'{tuple(lidar_feats.shape)} and {tuple(camera_feats.shape)}')
        return dict(lidar=F.normalize(self.lidar_proj(lidar_feats), dim=-1),
                    camera=F.normalize(self.camera_proj(camera_feats), dim=-1))

    def forward(self, lidar_feats: Tensor, camera_feats: Tensor) -> Dict[str, Tensor]:
        """Losses ``loss_swap``, ``loss_em`` (weighted) and the ``proto_*`` figures of M paired cells.

        Args:
            lidar_feats: (M, C_L) LiDAR BEV features of the selected cells.
            camera_feats: (M, C_I) camera BEV features of the same cells.
        """
        emb = self.embed(lidar_feats, camera_feats)
        self._prototype_state.embeddings = {k: v.detach() for k, v in emb.items()}
        terms = prototype_terms(emb['lidar'], emb['camera'], self.prototype_matrix(), self.temperature,
                                self.em_temperature, self.sinkhorn_epsilon, self.sinkhorn_iterations,
                                self.loss_swap_weight, self.loss_em_weight)
        self._prototype_state.assignments = terms.assignments
        return dict(loss_swap=terms.loss_swap, loss_em=terms.loss_em, **terms.figures)

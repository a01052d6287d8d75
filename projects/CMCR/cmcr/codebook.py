"""CMCR's multi-modal unified codebook: one vector-quantisation codebook shared by point and pixel features."""
from typing import Dict

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class UnifiedCodebook(nn.Module):
    """Vector quantiser with ``num_codes`` x ``dim`` codes (400 x 64 by default), updated by exponential
    moving averages of the assigned features (k-means style, VQ-VAE-2), with restarts of dead codes.

    Each feature is assigned to its nearest code (Euclidean). ``forward`` returns the straight-through
    quantised features, the code indices, the commitment loss ``||z - sg(e)||^2`` and the perplexity of the
    code usage. In training mode the codes move towards the mean of their assigned features (decay ``decay``);
    a code whose smoothed usage falls below ``dead_threshold`` times the mean usage (codes never used
    included; all are unused before the first batch) is restarted at a random feature of the batch, so usage
    does not collapse onto a few codes. Codes start on the unit sphere (the features CMCR feeds are
    L2-normalised).
    """

    def __init__(self, num_codes: int = 400, dim: int = 64, decay: float = 0.99, eps: float = 1e-5,
                 dead_threshold: float = 0.03) -> None:
        super().__init__()
        if num_codes < 2 or dim < 1:
            raise ValueError(f'need num_codes >= 2 and dim >= 1, got {num_codes} and {dim}')
        if not 0.0 < decay < 1.0:
            raise ValueError(f'decay must be in (0, 1), got {decay}')
        self.num_codes, self.dim = int(num_codes), int(dim)
        self.decay, self.eps, self.dead_threshold = float(decay), float(eps), float(dead_threshold)
        self.register_buffer('codes', F.normalize(torch.randn(self.num_codes, self.dim), dim=1))
        self.register_buffer('ema_count', torch.zeros(self.num_codes))
        self.register_buffer('ema_sum', torch.zeros(self.num_codes, self.dim))

    def assign(self, z: Tensor) -> Tensor:
        """Index (N,) of the nearest code of each feature (N, dim)."""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f'features must be (N, {self.dim}), got {tuple(z.shape)}')
        d = (z.detach().pow(2).sum(1, keepdim=True) - 2 * z.detach() @ self.codes.t()
             + self.codes.pow(2).sum(1)[None])
        return d.argmin(1)

    def distances(self, z: Tensor) -> Tensor:
        """Squared distances (N, num_codes), differentiable in ``z``."""
        return z.pow(2).sum(1, keepdim=True) - 2 * z @ self.codes.t() + self.codes.pow(2).sum(1)[None]

    @torch.no_grad()
    def update(self, z: Tensor, idx: Tensor) -> None:
        """EMA step of the codes towards their assigned features, then restart of dead codes."""
        onehot = F.one_hot(idx, self.num_codes).to(z.dtype)
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(onehot.t() @ z, alpha=1 - self.decay)
        n = self.ema_count.sum()
        count = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n
        self.codes.copy_(self.ema_sum / count[:, None])
        alive = self.ema_count >= self.dead_threshold * self.ema_count.mean()
        dead = (~alive).nonzero(as_tuple=True)[0]
        if dead.numel() > 0:
            c = self.ema_count[alive].mean()
            pick = torch.randint(0, z.shape[0], (dead.numel(), ), device=z.device)
            self.codes[dead] = z[pick]
            self.ema_sum[dead] = z[pick] * c
            self.ema_count[dead] = c

    def forward(self, z: Tensor) -> Dict[str, Tensor]:
        idx = self.assign(z)
        if self.training:
            self.update(z.detach().float(), idx)
        e = self.codes[idx].to(z.dtype)
        counts = torch.bincount(idx, minlength=self.num_codes).float()
        p = counts / counts.sum()
        perplexity = torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum())
        return dict(quantized=z + (e - z).detach(), indices=idx, loss_commit=F.mse_loss(z, e.detach()),
                    perplexity=perplexity)

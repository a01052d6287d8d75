"""CMCR's multi-modal unified codebook: one vector-quantisation codebook shared by point and pixel features."""
from typing import Dict

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from mmengine import dist
from torch import Tensor, nn


@MODELS.register_module()
class UnifiedCodebook(nn.Module):
    """Vector quantiser with ``num_codes`` x ``dim`` codes on the unit sphere (400 x 64 in CMCR's release),
    shared by both modalities.

    * :meth:`quantize` assigns each feature to its nearest code (Euclidean) and returns the straight-through
      quantised features (what CMCR's decoders read), the indices and the usage perplexity; it never changes
      the codes.
    * :meth:`update_cross` is CMCR's cross-modal EMA step on point-pixel pairs ``(p_i, x_i)``: the code nearest
      to ``p_i`` and the code nearest to ``x_i`` both move towards the pair mean ``(p_i + x_i) / 2``, with
      decay ``decay`` (0.999); the counts and sums are **all-reduced over the DDP ranks** (``mmengine.dist``),
      so every rank applies the same step, then the codes are re-normalised onto the unit sphere.
      Codes whose smoothed usage falls below ``dead_threshold`` times the mean (0: never) are restarted at
      pair means of rank 0, broadcast to every rank (an addition of this implementation, against collapse).
    """

    def __init__(self, num_codes: int = 400, dim: int = 64, decay: float = 0.999, eps: float = 1e-5,
                 dead_threshold: float = 0.0) -> None:
        super().__init__()
        if num_codes < 2 or dim < 1:
            raise ValueError(f'need num_codes >= 2 and dim >= 1, got {num_codes} and {dim}')
        if not 0.0 < decay < 1.0:
            raise ValueError(f'codebook decay must be in (0, 1), got {decay}')
        self.num_codes, self.dim = int(num_codes), int(dim)
        self.decay, self.eps, self.dead_threshold = float(decay), float(eps), float(dead_threshold)
        # uniform(-1, 1) then L2-normalised, as the release
        codes = F.normalize(torch.rand(self.num_codes, self.dim) * 2 - 1, dim=1)
        self.register_buffer('codes', codes)
        self.register_buffer('ema_count', torch.ones(self.num_codes))
        self.register_buffer('ema_sum', codes.clone())

    def _check(self, z: Tensor) -> None:
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f'features must be (N, {self.dim}), got {tuple(z.shape)}')

    def distances(self, z: Tensor) -> Tensor:
        """Squared distances (N, num_codes), differentiable in ``z``."""
        self._check(z)
        codes = self.codes.clone()  # saved for backward: the EMA step later updates the buffer in place
        return z.pow(2).sum(1, keepdim=True) - 2 * z @ codes.t() + codes.pow(2).sum(1)[None]

    def assign(self, z: Tensor) -> Tensor:
        """Index (N,) of the nearest code of each feature (N, dim)."""
        return self.distances(z.detach()).argmin(1)

    def quantize(self, z: Tensor) -> Dict[str, Tensor]:
        idx = self.assign(z)
        e = self.codes[idx].to(z.dtype)
        counts = torch.bincount(idx, minlength=self.num_codes).float()
        p = counts / counts.sum().clamp(min=1)
        perplexity = torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum())
        return dict(quantized=z + (e - z).detach(), codes=e, indices=idx, perplexity=perplexity)

    @torch.no_grad()
    def update_cross(self, p: Tensor, x: Tensor) -> None:
        """Cross-modal EMA step on paired features ``p``, ``x`` (N, dim), all-reduced, then re-normalised."""
        self._check(p)
        self._check(x)
        p, x = p.detach().float(), x.detach().float()
        mean = 0.5 * (p + x)
        oh = F.one_hot(self.assign(p), self.num_codes).float() + F.one_hot(self.assign(x), self.num_codes).float()
        count, total = oh.sum(0), oh.t() @ mean
        if dist.get_world_size() > 1:
            dist.all_reduce(count, op='sum')
            dist.all_reduce(total, op='sum')
        self.ema_count.mul_(self.decay).add_(count, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(total, alpha=1 - self.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n
        self.codes.copy_(F.normalize(self.ema_sum / smoothed[:, None], dim=1))
        if self.dead_threshold > 0:
            dead = self.ema_count < self.dead_threshold * self.ema_count.mean()  # same on every rank
            k = int(dead.sum())
            if k:
                rows = mean[torch.randint(0, mean.shape[0], (k, ), device=mean.device)]
                new = self.codes.clone()
                new[dead] = F.normalize(rows, dim=1)
                if dist.get_world_size() > 1:
                    dist.broadcast(new, src=0)
                c = self.ema_count[~dead].mean() if bool((~dead).any()) else self.ema_count.new_tensor(1.0)
                self.codes.copy_(new)
                self.ema_sum[dead] = new[dead] * c
                self.ema_count[dead] = c

    def forward(self, z: Tensor) -> Dict[str, Tensor]:
        return self.quantize(z)

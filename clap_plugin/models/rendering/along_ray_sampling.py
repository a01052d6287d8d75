"""Sample distances along rays for NeuS rendering: stratified samples, then NeuS importance rounds.

Each importance round turns the current samples' SDF into weights with a fixed sharpness
``base_up_sharpness * 2**i`` (NeuS's up-sampling; not the field's learnable sharpness) and adds
inverse-CDF samples at evenly spaced quantiles (no random state).
"""
from typing import Callable, List

import torch
from torch import Tensor

from .compositor import alpha_to_weights
from .neus_field import neus_alpha

_EPS = 1e-5
SDFQuery = Callable[[Tensor], Tensor]  # (N, 3) world points -> (N,) SDF


def sample_pdf(bins: Tensor, weights: Tensor, num: int) -> Tensor:
    """Inverse-CDF samples (R, num) from piecewise-constant weights (R, K) on bin edges (R, K+1).

    Uses evenly spaced quantiles (deterministic), so the importance samples need no random state.
    """
    pdf = (weights + _EPS) / (weights + _EPS).sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)], dim=-1)  # (R, K+1)
    u = torch.linspace(0.5 / num, 1.0 - 0.5 / num, num, device=bins.device, dtype=bins.dtype)
    u = u.expand(cdf.shape[0], num).contiguous()
    idx = torch.searchsorted(cdf.contiguous(), u, right=True)
    lo = (idx - 1).clamp(0, cdf.shape[-1] - 1)
    hi = idx.clamp(0, cdf.shape[-1] - 1)
    cdf_lo, cdf_hi = cdf.gather(1, lo), cdf.gather(1, hi)
    bin_lo, bin_hi = bins.gather(1, lo), bins.gather(1, hi)
    denom = torch.where(cdf_hi - cdf_lo < _EPS, torch.ones_like(cdf_hi), cdf_hi - cdf_lo)
    return bin_lo + (u - cdf_lo) / denom * (bin_hi - bin_lo)


def stratified_samples(near: Tensor, far: Tensor, num: int, perturb: bool) -> Tensor:
    """(R, num) distances, one per equal bin of [near, far] (R,): the bin centre, or uniform in the bin
    when ``perturb``."""
    r = near.shape[0]
    edges = torch.linspace(0.0, 1.0, num + 1, device=near.device, dtype=near.dtype)
    lo, hi = edges[:-1].expand(r, -1), edges[1:].expand(r, -1)
    frac = torch.rand(r, num, device=near.device, dtype=near.dtype) if perturb else 0.5
    u = lo + (hi - lo) * frac
    return near[:, None] + (far - near)[:, None] * u


class NeuSAlongRaySampler:
    """Stratified + NeuS importance sampling of distances along rays (72 + 24 in CLAP, 4 rounds).

    Args:
        num_stratified: stratified samples per ray (>= 2).
        num_importance: importance samples per ray in total.
        up_sample_steps: importance rounds; each adds ``num_importance // up_sample_steps`` samples (the first
            rounds take the remainder).
        base_up_sharpness: sharpness of the first round, doubled every round.
    """

    def __init__(self, num_stratified: int = 72, num_importance: int = 24, up_sample_steps: int = 4,
                 base_up_sharpness: float = 64.0) -> None:
        if num_stratified < 2:
            raise ValueError(f'num_stratified must be >= 2, got {num_stratified}')
        self.num_stratified = int(num_stratified)
        self.num_importance = int(num_importance)
        self.up_sample_steps = int(up_sample_steps)
        self.base_up_sharpness = float(base_up_sharpness)

    @property
    def num_samples(self) -> int:
        """Samples per ray M."""
        return self.num_stratified + max(self.num_importance, 0)

    def _per_step(self) -> List[int]:
        steps = max(1, min(self.up_sample_steps, self.num_importance))
        return [self.num_importance // steps + (1 if i < self.num_importance % steps else 0) for i in range(steps)]

    @torch.no_grad()
    def __call__(self, sdf: SDFQuery, origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor,
                 perturb: bool) -> Tensor:
        """Sorted distances (R, M) along rays (R, 3) from ``near`` to ``far`` (R,); ``sdf`` queries the field."""
        t = stratified_samples(near, far, self.num_stratified, perturb)
        if self.num_importance <= 0:
            return t

        def query(tt: Tensor) -> Tensor:
            pts = origins[:, None, :] + dirs[:, None, :] * tt[..., None]
            return sdf(pts.reshape(-1, 3)).reshape(tt.shape)

        values = query(t)
        for i, k in enumerate(self._per_step()):
            w = alpha_to_weights(neus_alpha(values, self.base_up_sharpness * 2 ** i))
            new_t = sample_pdf(t, w, k)
            new_values = query(new_t)
            t, order = torch.sort(torch.cat([t, new_t], dim=-1), dim=-1)
            values = torch.cat([values, new_values], dim=-1).gather(1, order)
        return t

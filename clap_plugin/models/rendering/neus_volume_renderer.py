"""NeuS-style SDF volume rendering of a batch of rays (stratified + importance samples).

A *field* is any object with
``query(points (N, 3)) -> (sdf (N,), features (N, F))`` and
``color(points (N, 3), view_dirs (N, 3), features (N, F), sdf_gradients (N, 3)) -> rgb (N, 3)``.

Opacity of interval [t_n, t_{n+1}]: alpha_n = max((Phi(s_n) - Phi(s_{n+1})) / Phi(s_n), 0) with
Phi(x) = sigmoid(h x); T_n = prod_{i<n} (1 - alpha_i); w_n = T_n alpha_n. The interval's range and colour
are the means of its end points: range = sum_n w_n (t_n + t_{n+1}) / 2, colour likewise; the residual
transmittance (1 - sum w) renders the background (range ``far``, a constant colour).
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

_EPS = 1e-5


def _slabs(origins: Tensor, dirs: Tensor, box_min, box_max) -> Tuple[Tensor, Tensor]:
    """Per-axis entry and exit distances (R, 3), (R, 3); the box bounds may be tensors or Python numbers."""
    safe = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    if isinstance(box_min, Tensor):
        t0, t1 = (box_min - origins) / safe, (box_max - origins) / safe
    else:  # Python scalars per axis: no host -> device copy
        t0 = torch.stack([(float(box_min[i]) - origins[:, i]) / safe[:, i] for i in range(3)], dim=-1)
        t1 = torch.stack([(float(box_max[i]) - origins[:, i]) / safe[:, i] for i in range(3)], dim=-1)
    return torch.minimum(t0, t1), torch.maximum(t0, t1)


def ray_box_intersection(origins: Tensor, dirs: Tensor, box_min, box_max) -> Tuple[Tensor, Tensor]:
    """Entry and exit distances (R,), (R,) of rays (R, 3) through an axis-aligned box (slab method).

    ``box_min`` / ``box_max`` are (3,) tensors or sequences of 3 numbers.
    """
    near, far = _slabs(origins, dirs, box_min, box_max)
    return near.amax(dim=-1), far.amin(dim=-1)


def ray_box_exit_axis(origins: Tensor, dirs: Tensor, box_min, box_max) -> Tensor:
    """(R,) axis (0 x, 1 y, 2 z) of the face through which each ray leaves the box."""
    return _slabs(origins, dirs, box_min, box_max)[1].argmin(dim=-1)


def neus_alpha(sdf: Tensor, sharpness: Union[Tensor, float]) -> Tensor:
    """(R, M) SDF at sorted samples -> (R, M-1) interval opacities in [0, 1]."""
    phi = torch.sigmoid(sdf * sharpness)
    prev, nxt = phi[:, :-1], phi[:, 1:]
    return ((prev - nxt + _EPS) / (prev + _EPS)).clamp(0.0, 1.0)


def alpha_to_weights(alpha: Tensor) -> Tensor:
    """(R, K) opacities -> (R, K) weights T_n alpha_n (non-negative, sum <= 1)."""
    ones = torch.ones_like(alpha[:, :1])
    trans = torch.cumprod(torch.cat([ones, 1.0 - alpha], dim=-1), dim=-1)[:, :-1]
    return (trans * alpha).clamp(min=0.0)


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


def _query_sdf(field, origins: Tensor, dirs: Tensor, t: Tensor) -> Tensor:
    pts = origins[:, None, :] + dirs[:, None, :] * t[..., None]
    return field.query(pts.reshape(-1, 3))[0].reshape(t.shape)


@torch.no_grad()
def sample_along_rays(field, origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor, num_stratified: int,
                      num_importance: int, up_sample_steps: int, base_up_sharpness: float,
                      perturb: bool) -> Tensor:
    """Sorted sample distances (R, num_stratified + num_importance) along each ray.

    Stratified samples in [near, far] (jittered inside their bins when ``perturb``), then
    ``up_sample_steps`` rounds of NeuS importance sampling with the fixed sharpness
    ``base_up_sharpness * 2**i``, each adding ``num_importance // up_sample_steps`` samples (the first
    rounds take the remainder).
    """
    r = origins.shape[0]
    edges = torch.linspace(0.0, 1.0, num_stratified + 1, device=origins.device, dtype=origins.dtype)
    lo, hi = edges[:-1].expand(r, -1), edges[1:].expand(r, -1)
    frac = torch.rand(r, num_stratified, device=origins.device, dtype=origins.dtype) if perturb else 0.5
    u = lo + (hi - lo) * frac
    t = near[:, None] + (far - near)[:, None] * u
    if num_importance <= 0:
        return t
    steps = max(1, min(up_sample_steps, num_importance))
    per_step = [num_importance // steps + (1 if i < num_importance % steps else 0) for i in range(steps)]
    sdf = _query_sdf(field, origins, dirs, t)
    for i, k in enumerate(per_step):
        w = alpha_to_weights(neus_alpha(sdf, base_up_sharpness * 2 ** i))
        new_t = sample_pdf(t, w, k)
        new_sdf = _query_sdf(field, origins, dirs, new_t)
        t, order = torch.sort(torch.cat([t, new_t], dim=-1), dim=-1)
        sdf = torch.cat([sdf, new_sdf], dim=-1).gather(1, order)
    return t


def render_rays(field, origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor, sharpness: Tensor,
                num_stratified: int = 72, num_importance: int = 24, up_sample_steps: int = 4,
                base_up_sharpness: float = 64.0, perturb: bool = False,
                background_color: Optional[Sequence[float]] = (0.0, 0.0, 0.0),
                create_graph: Optional[bool] = None, with_color: bool = True,
                t: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """Render range and RGB of R rays.

    Args:
        field: see module docstring.
        origins, dirs: (R, 3) ray origins and unit directions (world).
        near, far: (R,) sampling interval along each ray (metres).
        sharpness: scalar tensor h of Phi(x) = sigmoid(h x) (learnable).
        create_graph: keep the graph of the SDF gradient (needed to train through the normals);
            defaults to ``torch.is_grad_enabled()``.
        with_color: evaluate the colour MLP (it needs the SDF gradient). False renders geometry only (range,
            weights): no normals, no double backward; ``rgb`` is then zeros.
        t: (R, M) sorted sample distances from :func:`sample_along_rays`; computed here when None. Passing
            them keeps the no-grad sampling out of a gradient-checkpointed region (it is not recomputed).

    Returns:
        dict with ``range`` (R,), ``rgb`` (R, 3), ``weights`` (R, M-1), ``acc`` (R,) = sum of weights,
        ``t`` (R, M) sample distances, ``sdf`` (R, M).
    """
    outer_grad = torch.is_grad_enabled()
    if create_graph is None:
        create_graph = outer_grad
    r = origins.shape[0]
    if t is None:
        t = sample_along_rays(field, origins, dirs, near, far, num_stratified, num_importance, up_sample_steps,
                              base_up_sharpness, perturb)
    m = t.shape[1]
    pts = (origins[:, None, :] + dirs[:, None, :] * t[..., None]).reshape(-1, 3)
    if with_color:
        with torch.enable_grad():
            if not pts.requires_grad:
                pts = pts.detach().requires_grad_(True)
            sdf, feats = field.query(pts)
            grad = torch.autograd.grad(sdf.sum(), pts, create_graph=create_graph)[0]
        if not create_graph:
            grad = grad.detach()
        if not outer_grad:  # inference: drop the graph built for the normals
            sdf, feats, pts = sdf.detach(), feats.detach(), pts.detach()
        view = dirs[:, None, :].expand(r, m, 3).reshape(-1, 3)
        rgb = field.color(pts, view, feats, grad).reshape(r, m, 3)
    else:
        sdf = field.query(pts)[0]
        rgb = None
    sdf = sdf.reshape(r, m)
    weights = alpha_to_weights(neus_alpha(sdf, sharpness))  # (R, M-1)
    mid_t = 0.5 * (t[:, :-1] + t[:, 1:])
    acc = weights.sum(dim=-1)
    rng = (weights * mid_t).sum(dim=-1)
    if rgb is not None:
        mid_rgb = 0.5 * (rgb[:, :-1] + rgb[:, 1:])
        col = (weights[..., None] * mid_rgb).sum(dim=1)
    else:
        col = weights.new_zeros(r, 3)
    if background_color is not None:
        rest = (1.0 - acc).clamp(min=0.0)
        rng = rng + rest * far
        if rgb is not None and any(c != 0.0 for c in background_color):  # Python scalars: no H2D copy
            col = col + torch.stack([rest * float(c) for c in background_color], dim=-1)
    return dict(range=rng, rgb=col, weights=weights, acc=acc, t=t, sdf=sdf)

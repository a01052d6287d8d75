"""Mean curvature of an SDF field at query points.

n = grad s, n~ = n / |n|, kappa = div n~ = trace(d n~ / d p). For a sphere of radius r, |kappa| = 2 / r,
for a cylinder 1 / r, for a plane 0. Two estimators:

* ``exact``: double backward through the field (the trilinear interpolation of the rendering field is
  twice differentiable); one SDF forward, one gradient with graph, three second-order passes.
* ``finite_difference``: central differences of n~ with step ``h`` along each axis:
  kappa ~= sum_i (n~_i(p + h e_i) - n~_i(p - h e_i)) / (2 h); six first-order evaluations.
"""
from typing import Callable

import torch
from torch import Tensor

SDFFunction = Callable[[Tensor], Tensor]  # (N, 3) points -> (N,) signed distances
ESTIMATORS = ('exact', 'finite_difference')


def unit_normals(sdf_fn: SDFFunction, points: Tensor, create_graph: bool = False) -> Tensor:
    """(N, 3) points -> (N, 3) unit SDF gradients n~ (the points get a fresh graph)."""
    with torch.enable_grad():
        p = points.detach().requires_grad_(True)
        s = sdf_fn(p)
        n = torch.autograd.grad(s.sum(), p, create_graph=create_graph)[0]
        nt = n / n.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return nt if create_graph else nt.detach()


def mean_curvature_exact(sdf_fn: SDFFunction, points: Tensor) -> Tensor:
    """(N, 3) points -> (N,) mean curvature kappa = div(n~) by double backward (detached)."""
    with torch.enable_grad():
        p = points.detach().requires_grad_(True)
        s = sdf_fn(p)
        n = torch.autograd.grad(s.sum(), p, create_graph=True)[0]
        nt = n / n.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        kappa = torch.zeros_like(s)
        for i in range(3):
            if not nt.requires_grad:  # field linear in p (e.g. a plane): zero derivative
                break
            row = torch.autograd.grad(nt[:, i].sum(), p, retain_graph=i < 2, allow_unused=True)[0]
            if row is not None:
                kappa = kappa + row[:, i]
    return kappa.detach()


def mean_curvature_finite_difference(sdf_fn: SDFFunction, points: Tensor, step: float) -> Tensor:
    """(N, 3) points -> (N,) mean curvature by central differences of n~ with step ``step`` (detached)."""
    if step <= 0:
        raise ValueError(f'finite-difference step must be > 0, got {step}')
    n = points.shape[0]
    eye = torch.eye(3, dtype=points.dtype, device=points.device) * step  # (3, 3)
    shifted = torch.cat([points[None] + eye[:, None, :], points[None] - eye[:, None, :]], dim=0)  # (6, N, 3)
    nt = unit_normals(sdf_fn, shifted.reshape(-1, 3)).reshape(6, n, 3)
    diag = torch.stack([nt[i, :, i] - nt[3 + i, :, i] for i in range(3)], dim=0)  # (3, N)
    return diag.sum(dim=0) / (2.0 * step)


def mean_curvature(sdf_fn: SDFFunction, points: Tensor, estimator: str = 'exact', step: float = 0.06,
                   chunk_size: int = 65536) -> Tensor:
    """(N, 3) points -> (N,) mean curvature, processed in chunks of ``chunk_size`` points."""
    if estimator not in ESTIMATORS:
        raise ValueError(f'curvature estimator must be one of {ESTIMATORS}, got {estimator!r}')
    outs = []
    for s in range(0, points.shape[0], chunk_size):
        chunk = points[s:s + chunk_size]
        if estimator == 'exact':
            outs.append(mean_curvature_exact(sdf_fn, chunk))
        else:
            outs.append(mean_curvature_finite_difference(sdf_fn, chunk, step))
    return torch.cat(outs) if outs else points.new_zeros(0)

"""NeuS-style volume rendering of a batch of rays: the wiring of field, along-ray sampler and compositor.

A *field* is any object with
``query(points (N, 3)) -> (sdf (N,), features (N, F))``, ``sdf(points (N, 3)) -> (N,)``,
``color(points (N, 3), view_dirs (N, 3), features (N, F), sdf_gradients (N, 3)) -> rgb (N, 3)`` and
``alpha(sdf (R, M)) -> (R, M-1)`` interval opacities (see :class:`VolumeSDFField`).
"""
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor

from .along_ray_sampling import NeuSAlongRaySampler
from .compositor import composite


def render_rays(field, origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor,
                sampler: Optional[NeuSAlongRaySampler] = None, perturb: bool = False,
                background_color: Optional[Sequence[float]] = (0.0, 0.0, 0.0),
                create_graph: Optional[bool] = None, with_color: bool = True,
                t: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """Render range and RGB of R rays.

    Args:
        field: see module docstring.
        origins, dirs: (R, 3) ray origins and unit directions (world).
        near, far: (R,) sampling interval along each ray (metres); ``far`` is also the background range.
        sampler: along-ray sampler used when ``t`` is None (default: 72 + 24 NeuS samples).
        perturb: jitter the stratified samples (training).
        background_color: colour of the residual transmittance (None: no background term).
        create_graph: keep the graph of the SDF gradient (needed to train through the normals);
            defaults to ``torch.is_grad_enabled()``.
        with_color: evaluate the colour MLP (it needs the SDF gradient). False renders geometry only (range,
            weights): no normals, no double backward; ``rgb`` is then zeros.
        t: (R, M) sorted sample distances; drawn by ``sampler`` when None. Passing them keeps the no-grad
            sampling out of a gradient-checkpointed region (it is not recomputed).

    Returns:
        dict with ``range`` (R,), ``rgb`` (R, 3), ``weights`` (R, M-1), ``acc`` (R,) = sum of weights,
        ``t`` (R, M) sample distances, ``sdf`` (R, M).
    """
    outer_grad = torch.is_grad_enabled()
    if create_graph is None:
        create_graph = outer_grad
    r = origins.shape[0]
    if t is None:
        t = (sampler or NeuSAlongRaySampler())(field.sdf, origins, dirs, near, far, perturb)
    m = t.shape[1]
    pts = (origins[:, None, :] + dirs[:, None, :] * t[..., None]).reshape(-1, 3)
    rgb = None
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
    sdf = sdf.reshape(r, m)
    out = composite(field.alpha(sdf), t, far, rgb, background_color)
    return dict(range=out.range, rgb=out.rgb, weights=out.weights, acc=out.acc, t=t, sdf=sdf)

"""CLAP rendering head: NeuS volume rendering of LiDAR and camera rays from a 3D feature volume.

Loss (CLAP, arXiv 2412.03059; the normalised frame as in UniPAD's code):
L_rend = mean_L(w_L |r - r~| + w_sur |s(hit)|) + w_C mean_C |c - c~|, with every geometric term in the frame
normalised by ``coord_scale`` (1/54): ranges, SDF values and coordinates alike, so that the paper's weights
w_L : w_sur : w_C = 2 : 0.1 : 0.1 balance what they say.

The head wires three parts: the :class:`NeuSField` (SDF, colour, sharpness, opacities), the
:class:`NeuSAlongRaySampler` (stratified + importance distances) and the compositor (inside
:func:`render_rays`). Rays are rendered in chunks of ``ray_chunk_size``; while gradients are enabled each
chunk is gradient-checkpointed, so the memory of forward + backward is bounded by the chunk size, not by the
number of rays (only the per-ray outputs are kept for all rays). The along-ray samples are drawn (no grad)
before the checkpointed region, so that they are not recomputed. Rays without a colour target (LiDAR rays,
invalid pixels) are rendered geometry-only: no colour MLP, no SDF-gradient graph and so no double backward.
"""
from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .along_ray_sampling import NeuSAlongRaySampler
from .neus_field import NeuSField, VolumeSDFField
from .ray_batch import RayBatch
from .ray_box import ray_box_intersection
from .render_rays import render_rays

# what the head renders for every ray (``hit_sdf``: the SDF at given hit points, empty without them)
OUTPUTS = ('range', 'rgb', 'acc', 'weights', 'hit_sdf')


@MODELS.register_module()
class CLAPRenderingHead(BaseModule):
    """Render range and RGB from a (B, C, Z, H, W) feature volume and compute the rendering loss.

    Rays are given per sample as a :class:`RayBatch`. Every ray starts at ``near`` and ends where it leaves the
    ``point_cloud_range`` box.

    Args:
        in_channels: channels C of the feature volume.
        point_cloud_range: box spanned by the volume, [x0, y0, z0, x1, y1, z1] metres.
        coord_scale: world -> normalised coordinates and SDF units (CLAP and UniPAD: 1/54).
        field: kwargs of :class:`NeuSField` (MLP sizes).
        num_stratified, num_importance, up_sample_steps, base_up_sharpness: along-ray sampling (72 + 24).
        near: start of every ray (metres).
        init_sharpness: initial value of the field's learnable sharpness h of Phi(x) = sigmoid(h x).
        sharpness_scale: h = exp(sharpness_scale * v) (see :class:`NeuSField`).
        background_color: colour of the residual transmittance (None: no background term).
        ray_chunk_size: rays rendered at once; bounds the memory.
        checkpoint_chunks: recompute each chunk in backward instead of storing its graph.
        loss_range_weight, loss_surface_weight, loss_rgb_weight: w_L, w_sur, w_C (2.0, 0.1, 0.1).
        init_cfg: mmengine init config.
    """

    def __init__(self, in_channels: int, point_cloud_range: Sequence[float] = (-54, -54, -5, 54, 54, 3),
                 coord_scale: float = 1.0 / 54, field: Optional[dict] = None, num_stratified: int = 72,
                 num_importance: int = 24, up_sample_steps: int = 4, base_up_sharpness: float = 64.0,
                 near: float = 1.0, init_sharpness: float = 20.0, sharpness_scale: float = 10.0,
                 background_color: Optional[Sequence[float]] = (0.0, 0.0, 0.0), ray_chunk_size: int = 4096,
                 checkpoint_chunks: bool = True, loss_range_weight: float = 2.0,
                 loss_surface_weight: float = 0.1, loss_rgb_weight: float = 0.1,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(point_cloud_range) != 6:
            raise ValueError(f'point_cloud_range must have 6 values, got {point_cloud_range}')
        if ray_chunk_size < 1:
            raise ValueError(f'ray_chunk_size must be >= 1, got {ray_chunk_size}')
        self.field = NeuSField(in_channels, point_cloud_range, coord_scale, init_sharpness, sharpness_scale,
                               **(field or {}))
        self.sampler = NeuSAlongRaySampler(num_stratified, num_importance, up_sample_steps, base_up_sharpness)
        self.point_cloud_range = [float(v) for v in point_cloud_range]
        self.coord_scale = float(coord_scale)
        self.near = float(near)
        self.background_color = None if background_color is None else [float(c) for c in background_color]
        self.ray_chunk_size = int(ray_chunk_size)
        self.checkpoint_chunks = bool(checkpoint_chunks)
        self.loss_range_weight = float(loss_range_weight)
        self.loss_surface_weight = float(loss_surface_weight)
        self.loss_rgb_weight = float(loss_rgb_weight)

    @property
    def sharpness(self) -> Tensor:
        """Current sharpness h of the field (scalar tensor)."""
        return self.field.sharpness

    def bind(self, volume: Tensor) -> VolumeSDFField:
        """The field of one sample: ``volume`` (C, Z, H, W) or (1, C, Z, H, W)."""
        return self.field.bind(volume)

    def sdf_function(self, volume: Tensor):
        """SDF of one sample on a detached volume: (N, 3) world points -> (N,), for curvature scoring."""
        return self.bind(volume.detach()).sdf

    def bounded(self, rays: RayBatch, volume: Tensor) -> RayBatch:
        """``rays`` on the device and dtype of ``volume``, with unit directions and the sampling interval from
        ``near`` to where each ray leaves the scene box."""
        rays = rays.to(device=volume.device, dtype=volume.dtype)
        if rays.origins.shape != rays.directions.shape:
            raise ValueError(f'origins {tuple(rays.origins.shape)} and directions {tuple(rays.directions.shape)} '
                             'differ in shape')
        d = rays.directions / rays.directions.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        near = torch.full_like(rays.origins[:, 0], self.near)
        far = ray_box_intersection(rays.origins, d, self.point_cloud_range[:3], self.point_cloud_range[3:])[1]
        far = torch.maximum(far, near + 1e-3)
        return replace(rays, directions=d, near=near, far=far)

    def _render_chunk(self, volume: Tensor, rays: RayBatch, t: Tensor, hit: Optional[Tensor],
                      with_color: bool) -> Dict[str, Tensor]:
        field = self.bind(volume)
        out = render_rays(field, rays.origins, rays.directions, rays.near, rays.far,
                          background_color=self.background_color, with_color=with_color, t=t)
        hit_sdf = field.query(hit)[0] if hit is not None else rays.origins.new_zeros(0)
        return dict(range=out['range'], rgb=out['rgb'], acc=out['acc'], weights=out['weights'], hit_sdf=hit_sdf)

    def _render_group(self, volume: Tensor, sampling_field: VolumeSDFField, rays: RayBatch,
                      hit_points: Optional[Tensor], with_color: bool) -> Dict[str, Tensor]:
        """Chunked rendering of one group of bounded rays (all with or all without colour)."""
        n, c = len(rays), self.ray_chunk_size
        chunks = [rays[s:s + c] for s in range(0, n, c)]
        with torch.no_grad():
            t_all = [self.sampler(sampling_field.sdf, r.origins, r.directions, r.near, r.far, self.training)
                     for r in chunks]
        use_ckpt = self.checkpoint_chunks and torch.is_grad_enabled()
        outs = []
        for i, s in enumerate(range(0, n, c)):
            hit = None if hit_points is None else hit_points[s:s + c]
            outs.append(checkpoint(self._render_chunk, volume, chunks[i], t_all[i], hit, with_color,
                                   use_reentrant=False) if use_ckpt
                        else self._render_chunk(volume, chunks[i], t_all[i], hit, with_color))
        return {k: torch.cat([o[k] for o in outs]) for k in OUTPUTS}

    def _empty(self, volume: Tensor) -> Dict[str, Tensor]:
        empty = volume.new_zeros(0)
        return dict(range=empty, rgb=volume.new_zeros(0, 3), acc=empty,
                    weights=volume.new_zeros(0, self.sampler.num_samples - 1), hit_sdf=empty)

    def render_bounded(self, volume: Tensor, rays: RayBatch, hit_points: Optional[Tensor] = None,
                       color_mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Render rays from :meth:`bounded`; the rays without colour (``color_mask`` False) are rendered
        geometry-only. Returns every output of :data:`OUTPUTS`, (R, ...) each (``hit_sdf`` empty without
        ``hit_points``)."""
        n = len(rays)
        if n == 0:
            return self._empty(volume)
        if color_mask is None:
            groups = [(None, True)]
        else:
            color_mask = color_mask.to(device=volume.device, dtype=torch.bool).reshape(-1)
            if color_mask.shape[0] != n:
                raise ValueError(f'color_mask has {color_mask.shape[0]} entries for {n} rays')
            groups = [(torch.nonzero(~color_mask)[:, 0], False), (torch.nonzero(color_mask)[:, 0], True)]
        with torch.no_grad():  # one detached table for the along-ray sampling of every group
            sampling_field = self.bind(volume.detach())
        parts, order = [], []
        for idx, with_color in groups:
            if idx is not None and idx.numel() == 0:
                continue
            sub = rays if idx is None else rays[idx]
            hit = hit_points if idx is None or hit_points is None else hit_points[idx]
            parts.append(self._render_group(volume, sampling_field, sub, hit, with_color))
            if idx is not None:
                order.append(idx)
        out = {k: torch.cat([p[k] for p in parts]) for k in OUTPUTS}
        if order:  # back to the input order (a differentiable gather)
            inverse = torch.empty(n, dtype=torch.long, device=volume.device)
            inverse[torch.cat(order)] = torch.arange(n, device=volume.device)
            out = {k: v[inverse] if v.numel() else v for k, v in out.items()}
        return out

    def render(self, volume: Tensor, rays: RayBatch, hit_points: Optional[Tensor] = None,
               return_weights: bool = False, color_mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Render the rays of one sample in chunks.

        Args:
            volume: (C, Z, H, W) or (1, C, Z, H, W).
            rays: the R rays (targets are not used here).
            hit_points: optional (R, 3) points whose SDF is also returned (``hit_sdf``).
            return_weights: also return the (R, M-1) sample weights.
            color_mask: optional (R,) bool, the rays whose colour is rendered (default: all); the others are
                rendered geometry-only and get ``rgb`` 0.

        Returns:
            dict with ``range`` (R,), ``rgb`` (R, 3), ``acc`` (R,), optionally ``hit_sdf`` (R,), ``weights``.
        """
        out = self.render_bounded(volume, self.bounded(rays, volume), hit_points, color_mask)
        if not return_weights:
            del out['weights']
        if hit_points is None:
            del out['hit_sdf']
        return out

    def forward(self, volume: Tensor, rays: Sequence[RayBatch]) -> List[Dict[str, Tensor]]:
        """Render every sample: ``volume`` (B, C, Z, H, W), ``rays`` B ray batches."""
        self._check_batch(volume, rays)
        return [self.render(volume[b:b + 1], rays[b]) for b in range(volume.shape[0])]

    @staticmethod
    def _check_batch(volume: Tensor, rays: Sequence[RayBatch]) -> None:
        if volume.dim() != 5:
            raise ValueError(f'volume must be (B, C, Z, H, W), got shape {tuple(volume.shape)}')
        if len(rays) != volume.shape[0]:
            raise ValueError(f'got {len(rays)} ray batches for a volume batch of {volume.shape[0]}')

    def loss(self, volume: Tensor, rays: Sequence[RayBatch]) -> Dict[str, Tensor]:
        """Rendering losses ``loss_range``, ``loss_surface``, ``loss_rgb`` (already weighted)."""
        self._check_batch(volume, rays)
        range_err, surf_err, rgb_err = [], [], []
        for b in range(volume.shape[0]):
            rb = self.bounded(rays[b], volume)
            r_mask = rb.range_mask
            # invalid targets may be NaN: zero them so that no NaN reaches the (masked) gradients
            target_r = torch.where(r_mask, rb.range, 0.0)
            hit = rb.origins + rb.directions * target_r[:, None]
            c_mask = rb.rgb_mask
            out = self.render_bounded(volume[b:b + 1], rb, hit, c_mask)
            # normalised frame: range errors in units of coord_scale (metres / 54), like the SDF
            range_err.append((out['range'] - target_r).abs()[r_mask] * self.coord_scale)
            surf_err.append(out['hit_sdf'].abs()[r_mask])
            target_c = torch.where(c_mask[:, None], rb.rgb, 0.0)
            rgb_err.append((out['rgb'] - target_c).abs().mean(dim=-1)[c_mask])
        # keeps every parameter in the graph when a term has no rays (DDP needs all gradients)
        zero = volume.sum() * 0.0 + sum(p.sum() for p in self.parameters()) * 0.0

        def _mean(errs: List[Tensor]) -> Tensor:
            cat = torch.cat(errs) if errs else volume.new_zeros(0)
            return cat.mean() if cat.numel() else zero

        return dict(loss_range=self.loss_range_weight * _mean(range_err),
                    loss_surface=self.loss_surface_weight * _mean(surf_err),
                    loss_rgb=self.loss_rgb_weight * _mean(rgb_err))

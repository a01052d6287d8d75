"""The preview rendering of the pre-training visuals: a strided pixel grid of one camera rendered by the current
field, beside the real colours and LiDAR ranges, and the hard prototype assignments of the BEV cells."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..prototypes.prototype_state import PrototypeState
from ..rendering.ray_generation import camera_rays, sparse_depth
from ..rendering.rendering_head import CLAPRenderingHead
from .visuals import CameraVisuals, PretrainVisuals, PrototypeVisuals, StepRecord, VisualsRequest


@torch.no_grad()
def camera_preview(head: CLAPRenderingHead, volume: Tensor, proj: Tensor, image: Tensor, points: Tensor,
                   stride: int) -> Dict[str, Tensor]:
    """Render a strided pixel grid of one camera: ``proj`` (1, 4, 4), ``image`` (3, H, W) in [0, 1], ``points``
    (P, 3) keyframe points.

    Returns ``rgb`` (h, w, 3), ``range`` (h, w) rendered, and ``rgb_real`` (h, w, 3), ``range_real`` (h, w)
    (LiDAR ranges where points project, NaN elsewhere).
    """
    h, w = image.shape[-2:]
    vs = torch.arange(stride / 2, h, stride, dtype=proj.dtype, device=proj.device)
    us = torch.arange(stride / 2, w, stride, dtype=proj.dtype, device=proj.device)
    grid_v, grid_u = torch.meshgrid(vs, us, indexing='ij')
    pixels = torch.stack([grid_u, grid_v], -1).reshape(1, -1, 2)
    rays = camera_rays(proj, pixels, image[None], sparse_depth(points, proj, (h, w)))
    out = head.render(volume, rays)
    hh, ww = grid_v.shape
    real_range = torch.where(rays.range_mask, rays.range, torch.full_like(rays.range, float('nan')))
    return dict(rgb=out['rgb'].reshape(hh, ww, 3), range=out['range'].reshape(hh, ww),
                rgb_real=rays.rgb.reshape(hh, ww, 3), range_real=real_range.reshape(hh, ww))


def prototype_visuals(record: StepRecord, state: PrototypeState) -> PrototypeVisuals:
    """Argmax prototype of the LiDAR embedding of each BEV cell of the record's first sample."""
    cells = record.proto_cells.cpu()
    emb = state.embeddings['lidar'][:cells.shape[1]]
    protos = F.normalize(state.prototypes.detach(), dim=-1)
    return PrototypeVisuals(cells=cells, grid=record.proto_grid, assignment=(emb @ protos.t()).argmax(-1).cpu(),
                            num_prototypes=int(protos.shape[0]))


@torch.no_grad()
def pretrain_visuals(head: CLAPRenderingHead, record: StepRecord, request: VisualsRequest,
                     prototype_state: Optional[PrototypeState] = None) -> PretrainVisuals:
    """The :class:`PretrainVisuals` of a step: its ray selection, the preview of the requested camera (rendered
    by ``head`` as it is, so put the model in eval mode for a preview without jitter) and the prototype panel."""
    view, sel = record.view, record.view.selection
    vis = PretrainVisuals(point_cloud_range=list(head.point_cloud_range), points=view.points.detach().cpu(),
                          point_weights=sel.point_weights.detach().cpu(), point_inds=sel.point_inds.cpu())
    cam, stride = request.camera, request.stride
    if view.proj is not None and record.image is not None and sel.pixels is not None:
        prev = camera_preview(head, record.volume, view.proj[cam:cam + 1], record.image[cam], view.points, stride)
        vis.camera = CameraVisuals(camera=cam, stride=stride, pixel_map=sel.pixel_maps[cam].cpu(),
                                   pixels=sel.pixels[cam].cpu(), **{k: v.cpu() for k, v in prev.items()})
    if record.proto_cells is not None and prototype_state is not None:
        vis.prototypes = prototype_visuals(record, prototype_state)
    return vis

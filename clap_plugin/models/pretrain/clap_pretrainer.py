"""The CLAP pre-training model: BEVFusion encoders + masking + rendering + prototypes, no labels.

Per iteration: mask both modalities, encode them into the LiDAR, camera and fused BEVs, lift the fused BEV into
a 3D volume, draw LiDAR and camera rays (uniform during warm-up, then by the curvature of the learned field),
render them, and add the prototype losses on BEV cells that hold LiDAR points which survived the masking (so
that both modalities carry signal there) and the Gram regulariser.

RGB targets exist only where the image is real: pixels that the image augmentation filled (resize and
rotation borders, found by mapping the pixel back through ``img_aug_matrix`` into the original image) and
"sky" pixels (no LiDAR return there, and the ray leaves the scene box through its top face, so nothing in
the bounded field can explain their colour) are not RGB targets. Their rays are still rendered for range
where a LiDAR point projects into them.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS, TASK_UTILS
from mmdet3d.structures import Det3DDataSample
from torch import Tensor

from ..bevfusion.detector import CLAPBEVFusion
from ..geometry.keyframe import keyframe_points
from ..geometry.projection import pixel_projection
from ..rendering.ray_batch import RayBatch
from ..rendering.ray_box import ray_box_exit_axis
from .masking import mask_image_patches, mask_lidar_blocks
from .ray_builder import camera_rays, gather_pixels, lidar_rays, sparse_depth
from .ray_info import SampleRayInfo
from .visuals import CameraVisuals, PretrainVisuals, PrototypeVisuals


def pixels_inside_original(pixels: Tensor, img_aug: Tensor, ori_hw: Sequence[int]) -> Tensor:
    """Which augmented-image pixels show the original image (not the zero fill of the augmentation).

    Args:
        pixels: (N_cam, R, 2) (u, v) continuous coordinates in the augmented image.
        img_aug: (N_cam, 4, 4) BEVFusion ``img_aug_matrix`` (2D affine in its upper-left block and last column).
        ori_hw: (H, W) of the original images.

    Returns:
        (N_cam, R) bool: the pixel maps back inside the original image, at least one augmented pixel away
        from its border (the bilinear warp blends the zero fill within that band).
    """
    a, t = img_aug[:, :2, :2], img_aug[:, :2, 3]
    orig = torch.einsum('cij,crj->cri', torch.inverse(a), pixels - t[:, None, :])
    margin = 1.0 / torch.sqrt(torch.det(a).abs()).clamp(min=1e-6)  # one augmented pixel, in original pixels
    h, w = float(ori_hw[0]), float(ori_hw[1])
    m = margin[:, None]
    return (orig[..., 0] >= m) & (orig[..., 0] <= w - m) & (orig[..., 1] >= m) & (orig[..., 1] <= h - m)


@MODELS.register_module()
class CLAPPretrainer(CLAPBEVFusion):
    """CLAP: joint camera + LiDAR pre-training by differentiable rendering.

    The encoders have the submodule names of :class:`CLAPBEVFusion` (and of mmdet3d's BEVFusion), so the
    exported encoder weights load into the fine-tune detector.

    Args:
        volume_lifter: config of the BEV -> 3D volume lift (``CLAPBEVVolumeLifter``).
        rendering_head: config of ``CLAPRenderingHead``.
        ray_selector: config of the ray selector (TASK_UTILS ``CurvatureRaySelector``, registered also as
            ``CurvatureSampler``): ray budgets, warm-up, estimator, pixel policy. ``ray_sampler`` is the same
            argument under its older name (existing configs).
        prototype_loss: config of ``SwappedPrototypeLoss``; None disables the prototype terms.
        gram_regularizer: config of ``GramRegularizer``; None disables it (needs ``prototype_loss``).
        lidar_mask_ratio: share of occupied BEV blocks dropped from the LiDAR input.
        camera_mask_ratio: share of image patches zeroed.
        mask_block_size: (x, y) metres of a LiDAR mask block (one BEV cell: 8 x 8 voxels).
        image_patch_size: side of a camera mask patch in input pixels (32).
        render_lidar: render LiDAR rays (range targets). False for camera-only pre-training.
        render_camera: also render camera rays (RGB, and range where LiDAR projects).
        pixels_through_points: shorthand for the selector's ``pixel_policy='through_points'``: draw camera
            pixels uniformly among those where LiDAR points project (UniPAD's camera rays) instead of from the
            selector's maps (uniform in warm-up, curvature after).
        camera_range_targets: give camera rays range targets from projected LiDAR points.
        proto_max_cells: at most this many BEV cells per sample enter the prototype losses (see
            ``proto_cells_from``); a cell whose LiDAR BEV feature is exactly zero never enters.
        proto_cells_from: ``'occupied'`` (default): cells holding keyframe points (masked or not) whose LiDAR
            BEV is non-zero, i.e. real surfaces that the LiDAR encoder reached from the visible points around
            them; ``'visible'``: only cells holding points that survived the masking (about 1 / 10 as many,
            too few for the Sinkhorn equipartition at small batches).
        sky_rgb: ``'drop'`` (default) removes the RGB target of camera rays with no LiDAR return that leave the
            scene box through its top face; ``'keep'`` supervises them (against the black background).
        keyframe_dim: column of the points holding the sweep time lag (0 on the keyframe), or None when all
            points come from the keyframe; rays are cast from the LiDAR origin through keyframe points only.
        **kwargs: the encoder arguments of :class:`CLAPBEVFusion` (no ``bbox_head``). A
            ``Det3DDataPreprocessor`` is built as :class:`CLAPPretrainDataPreprocessor` (the same, plus
            ``inputs['raw_imgs']``, the un-normalised images of the RGB targets).
    """

    def __init__(self, volume_lifter: dict, rendering_head: dict, ray_selector: Optional[dict] = None,
                 prototype_loss: Optional[dict] = None, gram_regularizer: Optional[dict] = None,
                 lidar_mask_ratio: float = 0.9, camera_mask_ratio: float = 0.9,
                 mask_block_size: Sequence[float] = (0.6, 0.6), image_patch_size: int = 32,
                 render_lidar: bool = True, render_camera: bool = True, pixels_through_points: bool = False,
                 camera_range_targets: bool = True, proto_max_cells: int = 1024,
                 keyframe_dim: Optional[int] = 4, sky_rgb: str = 'drop', proto_cells_from: str = 'occupied',
                 ray_sampler: Optional[dict] = None, **kwargs) -> None:
        if (ray_selector is None) == (ray_sampler is None):
            raise ValueError('give the ray selector config once: ray_selector (or its older name ray_sampler)')
        ray_selector = dict(ray_selector if ray_selector is not None else ray_sampler)
        if pixels_through_points:
            if ray_selector.get('pixel_policy', 'through_points') != 'through_points':
                raise ValueError("pixels_through_points=True contradicts the selector's "
                                 f"pixel_policy={ray_selector['pixel_policy']!r}")
            ray_selector['pixel_policy'] = 'through_points'
        if kwargs.get('bbox_head') is not None:
            raise ValueError('CLAPPretrainer is label-free: bbox_head must be None')
        dp = kwargs.get('data_preprocessor')
        if dp is not None and dp.get('type') in ('Det3DDataPreprocessor', 'mmdet3d.Det3DDataPreprocessor'):
            # the same preprocessing, plus the raw images that the RGB targets are read from
            kwargs['data_preprocessor'] = dict(dp, type='CLAPPretrainDataPreprocessor')
        super().__init__(**kwargs)
        if not (render_lidar or render_camera):
            raise ValueError('CLAPPretrainer renders nothing: enable render_lidar and/or render_camera')
        if render_camera and not self.with_camera:
            raise ValueError('render_camera=True needs the camera branch')
        if gram_regularizer is not None and prototype_loss is None:
            raise ValueError('gram_regularizer needs prototype_loss (it regularises its prototypes)')
        if prototype_loss is not None and not self.with_camera:
            raise ValueError('prototype_loss pairs LiDAR and camera BEV cells: it needs the camera branch')
        self.volume_lifter = MODELS.build(volume_lifter)
        self.rendering_head = MODELS.build(rendering_head)
        self.ray_selector = TASK_UTILS.build(ray_selector)
        self.prototype_loss = MODELS.build(prototype_loss) if prototype_loss is not None else None
        self.gram_regularizer = MODELS.build(gram_regularizer) if gram_regularizer is not None else None
        self.lidar_mask_ratio = float(lidar_mask_ratio)
        self.camera_mask_ratio = float(camera_mask_ratio)
        self.mask_block_size = tuple(float(v) for v in mask_block_size)
        self.image_patch_size = int(image_patch_size)
        self.render_lidar = bool(render_lidar)
        self.render_camera = bool(render_camera)
        self.camera_range_targets = bool(camera_range_targets)
        self.proto_max_cells = int(proto_max_cells)
        self.keyframe_dim = keyframe_dim
        if sky_rgb not in ('drop', 'keep'):
            raise ValueError(f"sky_rgb must be 'drop' or 'keep', got {sky_rgb!r}")
        self.sky_rgb = sky_rgb
        if proto_cells_from not in ('occupied', 'visible'):
            raise ValueError(f"proto_cells_from must be 'occupied' or 'visible', got {proto_cells_from!r}")
        self.proto_cells_from = proto_cells_from
        self._visuals_request: Optional[Tuple[int, int]] = None  # (camera, stride), set by the hook
        self._visuals_stash: Dict[str, Any] = {}

    # ------------------------------------------------------------------ helpers
    @property
    def point_cloud_range(self) -> List[float]:
        return self.rendering_head.point_cloud_range

    @property
    def ray_sampler(self):
        """The ray selector under its older name (scripts written before the rename)."""
        return self.ray_selector

    @property
    def pixels_through_points(self) -> bool:
        """Whether camera pixels are drawn through projected LiDAR points (the selector's pixel policy)."""
        return getattr(self.ray_selector, 'pixel_policy', 'weight_maps') == 'through_points'

    def keyframe_points(self, points: Tensor) -> Tensor:
        """(P, C) -> (P', 3) keyframe points inside the point-cloud range."""
        return keyframe_points(points, self.point_cloud_range, self.keyframe_dim)[0][:, :3]

    def occupied_cells(self, points: Tensor, grid: Tuple[int, int], generator=None,
                       limit: Optional[int] = -1) -> Tuple[Tensor, Tensor]:
        """(ix, iy) BEV cells (of a (X, Y) grid over the range) holding points, at most ``limit`` of them
        (default ``proto_max_cells``; None: all)."""
        x0, y0, _, x1, y1, _ = self.point_cloud_range
        nx, ny = grid
        ix = ((points[:, 0] - x0) / ((x1 - x0) / nx)).floor().long().clamp(0, nx - 1)
        iy = ((points[:, 1] - y0) / ((y1 - y0) / ny)).floor().long().clamp(0, ny - 1)
        cells = torch.unique(ix * ny + iy)
        limit = self.proto_max_cells if limit == -1 else limit
        if limit is not None and cells.numel() > limit:
            keep = torch.randperm(cells.numel(), generator=generator, device='cpu')[:limit]
            cells = cells[keep.to(cells.device)]
        return torch.div(cells, ny, rounding_mode='floor'), cells % ny

    # ------------------------------------------------------------------ rays
    def build_rays(self, points: Tensor, imgs_raw: Optional[Tensor], cams: Optional[Dict[str, Tensor]], b: int,
                   volume: Tensor, ori_hw: Optional[Sequence[int]] = None) -> Tuple[RayBatch, SampleRayInfo]:
        """Rays of sample ``b``: the selected LiDAR rays followed by the selected camera rays.

        ``ori_hw`` is the (H, W) of the original images (for the valid-pixel mask of the RGB targets); without
        it every drawn pixel is taken as real.
        """
        kf = self.keyframe_points(points)
        if kf.shape[0] == 0:
            raise RuntimeError(f'sample {b} has no keyframe LiDAR point inside the point-cloud range')
        lidar_aug = cams['lidar_aug_matrix'][b] if cams is not None else torch.eye(4, dtype=kf.dtype,
                                                                                    device=kf.device)
        proj, depth = None, None
        img_shape = imgs_raw.shape[-2:] if imgs_raw is not None else None
        if self.render_camera:
            proj = pixel_projection(cams['lidar2img'][b], cams['img_aug_matrix'][b], lidar_aug)
            if self.camera_range_targets or self.pixels_through_points:
                depth = sparse_depth(kf, proj, img_shape)  # (N_cam, H, W), inf where no point projects
        sel = self.ray_selector.select(kf, lidar2img=proj, img_shape=img_shape,
                                       sdf_fn=self.rendering_head.sdf_function(volume[b]),
                                       lidar_pixels=None if depth is None else torch.isfinite(depth))
        rays = lidar_rays(kf[sel.point_inds], lidar_aug[:3, 3])
        if not self.render_lidar:
            rays = rays[:0]
        if self.render_camera:
            pixels = sel.pixels  # (N_cam, R, 2)
            cr = camera_rays(proj, pixels)
            n = pixels.shape[0] * pixels.shape[1]
            rgb = gather_pixels(imgs_raw[b], pixels).reshape(n, 3)
            if self.camera_range_targets:
                rng = (gather_pixels(depth[:, None], pixels)[..., 0] * cr['range_per_depth']).reshape(n)
            else:
                rng = torch.full((n, ), float('inf'), dtype=kf.dtype, device=kf.device)
            rgb_ok = torch.ones(n, dtype=torch.bool, device=kf.device)
            if ori_hw is not None:
                rgb_ok &= pixels_inside_original(pixels, cams['img_aug_matrix'][b], ori_hw).reshape(n)
            origins, dirs = cr['origins'].reshape(n, 3), cr['directions'].reshape(n, 3)
            if self.sky_rgb == 'drop':
                pcr = self.point_cloud_range
                exit_axis = ray_box_exit_axis(origins, dirs, pcr[:3], pcr[3:])
                sky = (exit_axis == 2) & (dirs[:, 2] > 0)
                if self.camera_range_targets:
                    sky &= ~torch.isfinite(rng)
                rgb_ok &= ~sky
            cam = RayBatch(origins=origins, directions=dirs,
                           range=torch.where(torch.isfinite(rng), rng, torch.zeros_like(rng)),
                           range_mask=torch.isfinite(rng), rgb=rgb, rgb_mask=rgb_ok)
            rays = RayBatch.cat([rays, cam])
        return rays, SampleRayInfo(points=kf, proj=proj, selection=sel)

    def render_losses(self, volume: Tensor, points: Sequence[Tensor], imgs_raw: Optional[Tensor],
                      cams: Optional[Dict[str, Tensor]],
                      ori_hw: Optional[Sequence[Sequence[int]]] = None
                      ) -> Tuple[Dict[str, Tensor], List[SampleRayInfo]]:
        """Draw the rays of every sample and render them: rendering losses and the per-sample ray infos.

        Runs in fp32 with autocast off, also under ``--amp``: the SDF, its double backward (curvature) and
        the transmittance products lose too much precision in half precision.
        """
        with torch.autocast(device_type=volume.device.type, enabled=False):
            volume = volume.float()
            cams32 = None if cams is None else {k: v.float() for k, v in cams.items()}
            imgs32 = None if imgs_raw is None else imgs_raw.float()
            rays, infos = [], []
            for b in range(len(points)):
                r, info = self.build_rays(points[b].float(), imgs32, cams32, b, volume,
                                          None if ori_hw is None else ori_hw[b])
                rays.append(r)
                infos.append(info)
            return dict(self.rendering_head.loss(volume, rays)), infos

    # ------------------------------------------------------------------ detector API
    def loss(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample], **kwargs) -> dict:
        """All pre-training losses; reads points, images and camera metas only (no labels)."""
        metas = [s.metainfo for s in batch_data_samples]
        points: List[Tensor] = list(batch_inputs_dict['points'])
        imgs: Optional[Tensor] = batch_inputs_dict.get('imgs') if self.with_camera else None
        if self.with_lidar:
            masked_points = [mask_lidar_blocks(p, self.point_cloud_range, self.mask_block_size,
                                               self.lidar_mask_ratio)[0] for p in points]
        else:
            masked_points = points
        inputs = dict(points=masked_points)
        cams, imgs_raw, ori_hw = None, None, None
        if self.with_camera:
            if imgs is None:
                raise KeyError("camera branch: batch inputs lack 'imgs'")
            inputs['imgs'] = mask_image_patches(imgs, self.image_patch_size, self.camera_mask_ratio)[0]
            cams = self.camera_matrices(metas, imgs.shape[1], imgs)  # once per step, also for the encoders
            imgs_raw = batch_inputs_dict.get('raw_imgs')
            if imgs_raw is None:
                raise KeyError("camera rays: batch inputs lack 'raw_imgs' (the un-normalised images); use "
                               "CLAPPretrainDataPreprocessor")
            if self.render_camera:
                ori_hw = [self._ori_hw(m) for m in metas]
        bev = self.extract_bev(inputs, metas, cams)
        volume = self.volume_lifter(bev['fused_bev'])

        losses, infos = self.render_losses(volume, points, imgs_raw, cams, ori_hw)
        if self.prototype_loss is not None:
            cells, figures = self.prototype_cells(bev['lidar_bev'], masked_points, points)
            lidar_bev, camera_bev = bev['lidar_bev'], bev['camera_bev']
            lf = [lidar_bev[b, :, ix, iy].t() for b, (ix, iy) in enumerate(cells)]
            cf = [camera_bev[b, :, ix, iy].t() for b, (ix, iy) in enumerate(cells)]
            losses.update(self.prototype_loss(torch.cat(lf), torch.cat(cf)))
            losses.update(figures)
            if self.gram_regularizer is not None:
                losses['loss_gram'] = self.gram_regularizer(self.prototype_loss.prototype_matrix())
            if self._visuals_request is not None:
                self._visuals_stash.update(proto_cells=torch.stack(cells[0]).detach(),
                                           proto_grid=tuple(int(v) for v in lidar_bev.shape[-2:]))
        if self._visuals_request is not None:
            self._visuals_stash.update(volume=volume[0].detach(), info=infos[0],
                                       image=None if imgs_raw is None else imgs_raw[0].detach())
        return losses

    @staticmethod
    def _ori_hw(meta: dict) -> Tuple[int, int]:
        shape = meta.get('ori_shape')
        if shape is None:
            raise KeyError("camera rays: data sample meta lacks 'ori_shape' (the original image (H, W)); add "
                           "'ori_shape' to Pack3DDetInputs.meta_keys of the pre-training pipeline")
        shape = shape[0] if isinstance(shape, (list, tuple)) and isinstance(shape[0], (list, tuple)) else shape
        return int(shape[0]), int(shape[1])

    def prototype_cells(self, lidar_bev: Tensor, masked_points: Sequence[Tensor], points: Sequence[Tensor]):
        """The BEV cells of each sample that enter the prototype losses, and their ``proto_*`` figures.

        Candidates are the cells holding keyframe points (``proto_cells_from='occupied'``: all of them;
        ``'visible'``: those of the points that survived the masking); a candidate whose LiDAR BEV feature is
        exactly zero (the encoder never reached it) is dropped; at most ``proto_max_cells`` per sample remain.

        Returns:
            list of B (ix, iy) index pairs, and a dict with ``proto_zero_lidar_share`` (share of the cells
            entering the losses whose LiDAR BEV is zero: 0 unless the selection is broken),
            ``proto_dropped_share`` (share of the candidates dropped for a zero LiDAR BEV) and ``proto_cells``
            (cells per sample).
        """
        grid = tuple(lidar_bev.shape[-2:])
        source = masked_points if self.proto_cells_from == 'visible' else points
        cells, n_cand, n_drop, n_used, n_zero = [], 0, 0, 0, 0
        with torch.no_grad():
            nonzero = lidar_bev.detach().abs().sum(1) > 0  # (B, X, Y)
        for b, pts in enumerate(source):
            ix, iy = self.occupied_cells(self.keyframe_points(pts.float()), grid, limit=None)
            ok = nonzero[b, ix, iy]
            n_cand += ix.numel()
            n_drop += int((~ok).sum())
            ix, iy = ix[ok], iy[ok]
            if ix.numel() > self.proto_max_cells:
                keep = torch.randperm(ix.numel(), device='cpu')[:self.proto_max_cells].to(ix.device)
                ix, iy = ix[keep], iy[keep]
            n_used += ix.numel()
            n_zero += int((~nonzero[b, ix, iy]).sum())
            cells.append((ix, iy))
        ref = lidar_bev.new_zeros(())
        figures = dict(proto_zero_lidar_share=ref + n_zero / max(n_used, 1),
                       proto_dropped_share=ref + n_drop / max(n_cand, 1),
                       proto_cells=ref + n_used / max(len(cells), 1))
        return cells, figures

    # ------------------------------------------------------------------ visuals
    def request_visuals(self, camera: int = 0, stride: int = 8) -> None:
        """Keep what :meth:`pop_visuals` needs from the next training step (camera ``camera``, preview grid
        of ``stride`` pixels)."""
        self._visuals_request = (int(camera), int(stride))
        self._visuals_stash = {}

    @torch.no_grad()
    def pop_visuals(self) -> Optional[PretrainVisuals]:
        """The visuals of the step since :meth:`request_visuals` (None if no step ran); ends the request.

        Renders the preview of the requested camera (eval mode: no jitter) with the current weights.
        """
        request, stash = self._visuals_request, self._visuals_stash
        self._visuals_request, self._visuals_stash = None, {}
        if request is None or 'info' not in stash:
            return None
        cam, stride = request
        info: SampleRayInfo = stash['info']
        sel = info.selection
        vis = PretrainVisuals(point_cloud_range=list(self.point_cloud_range), points=info.points.detach().cpu(),
                              point_weights=sel.point_weights.detach().cpu(), point_inds=sel.point_inds.cpu())
        if info.proj is not None and stash.get('image') is not None and sel.pixels is not None:
            was_training = self.training
            self.eval()
            try:
                prev = self._camera_preview(stash['volume'], info.proj[cam:cam + 1], stash['image'][cam],
                                            info.points, stride)
            finally:
                self.train(was_training)
            vis.camera = CameraVisuals(camera=cam, stride=stride, pixel_map=sel.pixel_maps[cam].cpu(),
                                       pixels=sel.pixels[cam].cpu(), **{k: v.cpu() for k, v in prev.items()})
        if 'proto_cells' in stash and self.prototype_loss is not None:
            cells = stash['proto_cells'].cpu()
            emb = self.prototype_loss.last_embeddings['lidar'][:cells.shape[1]]
            protos = F.normalize(self.prototype_loss.prototypes.detach(), dim=-1)
            vis.prototypes = PrototypeVisuals(cells=cells, grid=stash['proto_grid'],
                                              assignment=(emb @ protos.t()).argmax(-1).cpu(),
                                              num_prototypes=int(protos.shape[0]))
        return vis

    def _camera_preview(self, volume: Tensor, proj: Tensor, image: Tensor, points: Tensor,
                        stride: int) -> Dict[str, Tensor]:
        """Render a strided pixel grid of one camera: ``proj`` (1, 4, 4), ``image`` (3, H, W) in [0, 1].

        Returns ``rgb`` (h, w, 3), ``range`` (h, w) rendered, and ``rgb_real`` (h, w, 3), ``range_real`` (h, w)
        (LiDAR ranges where points project, NaN elsewhere).
        """
        h, w = image.shape[-2:]
        vs = torch.arange(stride / 2, h, stride, dtype=proj.dtype, device=proj.device)
        us = torch.arange(stride / 2, w, stride, dtype=proj.dtype, device=proj.device)
        grid_v, grid_u = torch.meshgrid(vs, us, indexing='ij')
        pixels = torch.stack([grid_u, grid_v], -1).reshape(1, -1, 2)
        cr = camera_rays(proj, pixels)
        out = self.rendering_head.render(volume, RayBatch.create(cr['origins'][0], cr['directions'][0]))
        depth = gather_pixels(sparse_depth(points, proj, (h, w))[:, None], pixels)[0, :, 0]
        real_range = torch.where(torch.isfinite(depth), depth * cr['range_per_depth'][0],
                                 torch.full_like(depth, float('nan')))
        hh, ww = grid_v.shape
        return dict(rgb=out['rgb'].reshape(hh, ww, 3), range=out['range'].reshape(hh, ww),
                    rgb_real=gather_pixels(image[None], pixels)[0].reshape(hh, ww, 3),
                    range_real=real_range.reshape(hh, ww))

    def predict(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample], **kwargs):
        raise NotImplementedError('CLAPPretrainer has no detection output; export its encoders with '
                                  'tools/export_pretrained.py and fine-tune a CLAPBEVFusion detector')

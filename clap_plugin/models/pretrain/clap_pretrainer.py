"""The CLAP pre-training model: BEVFusion encoders + masking + rendering + prototypes, no labels.

Per iteration: mask both modalities, encode them into the LiDAR, camera and fused BEVs, lift the fused BEV into
a 3D volume, draw LiDAR and camera rays (uniform during warm-up, then by the curvature of the learned field),
render them, and add the prototype losses on BEV cells that hold LiDAR points which survived the masking (so
that both modalities carry signal there) and the Gram regulariser (CLAP, arXiv 2412.03059).

The rays and their targets (RGB only where the image is real, range where LiDAR projects) are made by
:mod:`clap_plugin.models.rendering.ray_generation`.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet3d.registry import MODELS, TASK_UTILS
from mmdet3d.structures import Det3DDataSample
from mmengine.logging import MessageHub
from torch import Tensor

from ..bevfusion.bev_pretrainer import BEVFusionPretrainer
from ..geometry.keyframe import keyframe_points
from ..prototypes.prototype_state import PrototypeState
from ..rendering.ray_batch import RayBatch
from ..rendering.ray_generation import SensorView, selected_rays, sensor_view
from .masking import mask_image_patches, mask_lidar_blocks
from .preview import pretrain_visuals
from .visuals import PretrainVisuals, StepRecord, VisualsRequest


@MODELS.register_module()
class CLAPPretrainer(BEVFusionPretrainer):
    """CLAP: joint camera + LiDAR pre-training by differentiable rendering.

    Args:
        volume_lifter: config of the BEV -> 3D volume lift (``CLAPBEVVolumeLifter``).
        rendering_head: config of ``CLAPRenderingHead``; its ``point_cloud_range`` defaults to the model's
            (``voxelize_cfg.point_cloud_range``) and must equal it.
        ray_selector: config of the ray selector (TASK_UTILS ``CurvatureRaySelector``): ray budgets, warm-up,
            weighting, estimator, pixel policy.
        prototype_loss: config of ``SwappedPrototypeLoss``; None disables the prototype terms.
        gram_regularizer: config of ``GramRegularizer``; None disables it (needs ``prototype_loss``).
        lidar_mask_ratio: share of occupied BEV blocks dropped from the LiDAR input.
        camera_mask_ratio: share of image patches zeroed.
        mask_block_size: (x, y) metres of a LiDAR mask block (one BEV cell: 8 x 8 voxels).
        image_patch_size: side of a camera mask patch in input pixels (32).
        render_lidar: render LiDAR rays (range targets). False for camera-only pre-training.
        render_camera: also render camera rays (RGB, and range where LiDAR projects).
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
        **kwargs: the encoder arguments of :class:`BEVFusionPretrainer`. A ``Det3DDataPreprocessor`` is built
            as :class:`CLAPPretrainDataPreprocessor` (the same, plus ``inputs['raw_imgs']``, the un-normalised
            images of the RGB targets).
    """

    def __init__(self, volume_lifter: dict, rendering_head: dict, ray_selector: dict,
                 prototype_loss: Optional[dict] = None, gram_regularizer: Optional[dict] = None,
                 lidar_mask_ratio: float = 0.9, camera_mask_ratio: float = 0.9,
                 mask_block_size: Sequence[float] = (0.6, 0.6), image_patch_size: int = 32,
                 render_lidar: bool = True, render_camera: bool = True, camera_range_targets: bool = True,
                 proto_max_cells: int = 1024, keyframe_dim: Optional[int] = 4, sky_rgb: str = 'drop',
                 proto_cells_from: str = 'occupied', **kwargs) -> None:
        dp = kwargs.get('data_preprocessor')
        if dp is not None and dp.get('type') in ('Det3DDataPreprocessor', 'mmdet3d.Det3DDataPreprocessor'):
            # the same preprocessing, plus the raw images that the RGB targets are read from
            kwargs['data_preprocessor'] = dict(dp, type='CLAPPretrainDataPreprocessor')
        super().__init__(**kwargs)
        self._check_options(render_lidar, render_camera, prototype_loss, gram_regularizer, sky_rgb,
                            proto_cells_from)
        self.volume_lifter = MODELS.build(volume_lifter)
        self.rendering_head = MODELS.build(self._with_scene_range(rendering_head))
        self.ray_selector = TASK_UTILS.build(ray_selector)
        self.prototype_loss = MODELS.build(prototype_loss) if prototype_loss is not None else None
        self.gram_regularizer = MODELS.build(gram_regularizer) if gram_regularizer is not None else None
        self._point_cloud_range = self.rendering_head.point_cloud_range
        self.lidar_mask_ratio = float(lidar_mask_ratio)
        self.camera_mask_ratio = float(camera_mask_ratio)
        self.mask_block_size = tuple(float(v) for v in mask_block_size)
        self.image_patch_size = int(image_patch_size)
        self.render_lidar = bool(render_lidar)
        self.render_camera = bool(render_camera)
        self.camera_range_targets = bool(camera_range_targets)
        self.proto_max_cells = int(proto_max_cells)
        self.keyframe_dim = keyframe_dim
        self.sky_rgb = sky_rgb
        self.proto_cells_from = proto_cells_from
        self.visuals_request: Optional[VisualsRequest] = None  # set by the visualisation hook
        self.last_step: Optional[StepRecord] = None  # kept by a training step while a request is pending

    def _check_options(self, render_lidar: bool, render_camera: bool, prototype_loss: Optional[dict],
                       gram_regularizer: Optional[dict], sky_rgb: str, proto_cells_from: str) -> None:
        if not (render_lidar or render_camera):
            raise ValueError('CLAPPretrainer renders nothing: enable render_lidar and/or render_camera')
        if render_camera and not self.with_camera:
            raise ValueError('render_camera=True needs the camera branch')
        if gram_regularizer is not None and prototype_loss is None:
            raise ValueError('gram_regularizer needs prototype_loss (it regularises its prototypes)')
        if prototype_loss is not None and not self.with_camera:
            raise ValueError('prototype_loss pairs LiDAR and camera BEV cells: it needs the camera branch')
        if sky_rgb not in ('drop', 'keep'):
            raise ValueError(f"sky_rgb must be 'drop' or 'keep', got {sky_rgb!r}")
        if proto_cells_from not in ('occupied', 'visible'):
            raise ValueError(f"proto_cells_from must be 'occupied' or 'visible', got {proto_cells_from!r}")

    def _with_scene_range(self, rendering_head: dict) -> dict:
        """The rendering head's config with the model's point-cloud range (the range of ``voxelize_cfg``)."""
        head = dict(rendering_head)
        if self._point_cloud_range is None:  # no voxelize_cfg: the head's own range is the scene's
            if 'point_cloud_range' not in head:
                raise ValueError('CLAPPretrainer needs a point-cloud range: give voxelize_cfg')
            return head
        given = head.setdefault('point_cloud_range', self.point_cloud_range)
        if [float(v) for v in given] != self.point_cloud_range:
            raise ValueError(f'rendering_head.point_cloud_range {list(given)} differs from the model\'s '
                             f'{self.point_cloud_range} (voxelize_cfg); leave it out')
        return head

    # ------------------------------------------------------------------ contracts with the hooks
    @property
    def prototype_state(self) -> Optional[PrototypeState]:
        """What the prototype losses share with the ``PrototypeEMHook`` (None without prototype losses)."""
        return self.prototype_loss.prototype_state if self.prototype_loss is not None else None

    def request_visuals(self, camera: int = 0, stride: int = 8) -> None:
        """Keep what :meth:`pop_visuals` needs from the next training step (camera ``camera``, preview grid
        of ``stride`` pixels)."""
        self.visuals_request = VisualsRequest(int(camera), int(stride))
        self.last_step = None

    @torch.no_grad()
    def pop_visuals(self) -> Optional[PretrainVisuals]:
        """The visuals of the step since :meth:`request_visuals` (None if no step ran); ends the request.

        Renders the preview of the requested camera (eval mode: no jitter) with the current weights.
        """
        request, record = self.visuals_request, self.last_step
        self.visuals_request, self.last_step = None, None
        if request is None or record is None:
            return None
        was_training = self.training
        self.eval()
        try:
            return pretrain_visuals(self.rendering_head, record, request, self.prototype_state)
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ points and cells
    def keyframe_points(self, points: Tensor) -> Tensor:
        """(P, C) -> (P', 3) keyframe points inside the point-cloud range."""
        return keyframe_points(points, self.point_cloud_range, self.keyframe_dim)[0][:, :3]

    def occupied_cells(self, points: Tensor, grid: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """(ix, iy) of the distinct cells of a (X, Y) BEV grid over the range that hold ``points`` (P, 3)."""
        x0, y0, _, x1, y1, _ = self.point_cloud_range
        nx, ny = grid
        ix = ((points[:, 0] - x0) / ((x1 - x0) / nx)).floor().long().clamp(0, nx - 1)
        iy = ((points[:, 1] - y0) / ((y1 - y0) / ny)).floor().long().clamp(0, ny - 1)
        cells = torch.unique(ix * ny + iy)
        return torch.div(cells, ny, rounding_mode='floor'), cells % ny

    def prototype_cells(self, lidar_bev: Tensor, masked_points: Sequence[Tensor],
                        points: Sequence[Tensor]) -> Tuple[List[Tuple[Tensor, Tensor]], Dict[str, Tensor]]:
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
            ix, iy = self.occupied_cells(self.keyframe_points(pts.float()), grid)
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

    # ------------------------------------------------------------------ rays
    def sensor_view(self, points: Tensor, imgs_raw: Optional[Tensor], cams: Optional[Dict[str, Tensor]], b: int,
                    ori_hw: Optional[Sequence[int]] = None) -> SensorView:
        """The :class:`SensorView` of sample ``b``: its keyframe points and, when camera rays are rendered, its
        cameras (``ori_hw``: (H, W) of the original images, for the valid-pixel mask of the RGB targets;
        without it every drawn pixel is taken as real)."""
        kf = self.keyframe_points(points)
        if kf.shape[0] == 0:
            raise RuntimeError(f'sample {b} has no keyframe LiDAR point inside the point-cloud range')
        lidar_aug = cams['lidar_aug_matrix'][b] if cams is not None else torch.eye(4, dtype=kf.dtype,
                                                                                    device=kf.device)
        if not self.render_camera:
            return sensor_view(kf, lidar_aug)
        through_points = self.ray_selector.pixel_policy == 'through_points'
        return sensor_view(kf, lidar_aug, cams['lidar2img'][b], cams['img_aug_matrix'][b], imgs_raw[b], ori_hw,
                           with_depth=self.camera_range_targets or through_points)

    def build_rays(self, points: Tensor, imgs_raw: Optional[Tensor], cams: Optional[Dict[str, Tensor]], b: int,
                   volume: Tensor, ori_hw: Optional[Sequence[int]] = None,
                   epoch: int = 0) -> Tuple[RayBatch, SensorView]:
        """Rays of sample ``b`` at training epoch ``epoch``: the selected LiDAR rays followed by the selected
        camera rays, and the sample's :class:`SensorView` with its selection."""
        view = self.sensor_view(points, imgs_raw, cams, b, ori_hw)
        view.selection = self.ray_selector.select(
            view.points, lidar2img=view.proj, img_shape=None if imgs_raw is None else imgs_raw.shape[-2:],
            sdf_fn=self.rendering_head.sdf_function(volume[b]), epoch=epoch,
            lidar_pixels=None if view.depth is None else torch.isfinite(view.depth))
        rays = selected_rays(view, lidar=self.render_lidar, camera=self.render_camera,
                             range_targets=self.camera_range_targets,
                             sky_box=self.point_cloud_range if self.sky_rgb == 'drop' else None)
        return rays, view

    def render_losses(self, volume: Tensor, points: Sequence[Tensor], imgs_raw: Optional[Tensor],
                      cams: Optional[Dict[str, Tensor]], ori_hw: Optional[Sequence[Sequence[int]]] = None,
                      epoch: int = 0) -> Tuple[Dict[str, Tensor], List[SensorView]]:
        """Draw the rays of every sample and render them: rendering losses and the per-sample views.

        Runs in fp32 with autocast off, also under ``--amp``: the SDF, its double backward (curvature) and
        the transmittance products lose too much precision in half precision.
        """
        with torch.autocast(device_type=volume.device.type, enabled=False):
            volume = volume.float()
            cams32 = None if cams is None else {k: v.float() for k, v in cams.items()}
            imgs32 = None if imgs_raw is None else imgs_raw.float()
            rays, views = [], []
            for b in range(len(points)):
                r, view = self.build_rays(points[b].float(), imgs32, cams32, b, volume,
                                          None if ori_hw is None else ori_hw[b], epoch)
                rays.append(r)
                views.append(view)
            return dict(self.rendering_head.loss(volume, rays)), views

    # ------------------------------------------------------------------ the step
    def masked_inputs(self, batch_inputs_dict: dict) -> dict:
        """The encoder inputs with a random ``lidar_mask_ratio`` of the LiDAR BEV blocks dropped and a random
        ``camera_mask_ratio`` of the image patches zeroed."""
        points: List[Tensor] = list(batch_inputs_dict['points'])
        if self.with_lidar:
            points = [mask_lidar_blocks(p, self.point_cloud_range, self.mask_block_size,
                                        self.lidar_mask_ratio)[0] for p in points]
        inputs = dict(points=points)
        if self.with_camera:
            imgs = batch_inputs_dict.get('imgs')
            if imgs is None:
                raise KeyError("camera branch: batch inputs lack 'imgs'")
            inputs['imgs'] = mask_image_patches(imgs, self.image_patch_size, self.camera_mask_ratio)[0]
        return inputs

    def loss(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample], **kwargs) -> dict:
        """All pre-training losses; reads points, images and camera metas only (no labels)."""
        metas = [s.metainfo for s in batch_data_samples]
        points: List[Tensor] = list(batch_inputs_dict['points'])
        inputs = self.masked_inputs(batch_inputs_dict)
        cams, imgs_raw, ori_hw = None, None, None
        if self.with_camera:
            imgs = batch_inputs_dict['imgs']
            cams = self.camera_matrices(metas, imgs.shape[1], imgs)  # once per step, also for the encoders
            imgs_raw = batch_inputs_dict.get('raw_imgs')
            if imgs_raw is None:
                raise KeyError("camera rays: batch inputs lack 'raw_imgs' (the un-normalised images); use "
                               "CLAPPretrainDataPreprocessor")
            if self.render_camera:
                ori_hw = [self._ori_hw(m) for m in metas]
        bev = self.extract_bev(inputs, metas, cams)
        volume = self.volume_lifter(bev['fused_bev'])
        epoch = int(MessageHub.get_current_instance().get_info('epoch', 0))  # the runner's training epoch
        losses, views = self.render_losses(volume, points, imgs_raw, cams, ori_hw, epoch)
        if self.visuals_request is not None:
            self.last_step = StepRecord(volume=volume[0].detach(), view=views[0],
                                        image=None if imgs_raw is None else imgs_raw[0].detach())
        if self.prototype_loss is not None:
            losses.update(self.prototype_losses(bev, inputs['points'], points))
        return losses

    def prototype_losses(self, bev: Dict[str, Tensor], masked_points: Sequence[Tensor],
                         points: Sequence[Tensor]) -> Dict[str, Tensor]:
        """Swapped-prototype and EM losses (and the Gram term) of the paired LiDAR / camera BEV cells, with the
        ``proto_*`` figures."""
        lidar_bev, camera_bev = bev['lidar_bev'], bev['camera_bev']
        cells, figures = self.prototype_cells(lidar_bev, masked_points, points)
        lf = [lidar_bev[b, :, ix, iy].t() for b, (ix, iy) in enumerate(cells)]
        cf = [camera_bev[b, :, ix, iy].t() for b, (ix, iy) in enumerate(cells)]
        losses = dict(self.prototype_loss(torch.cat(lf), torch.cat(cf)))
        losses.update(figures)
        if self.gram_regularizer is not None:
            losses['loss_gram'] = self.gram_regularizer(self.prototype_loss.prototype_matrix())
        if self.last_step is not None:
            self.last_step.proto_cells = torch.stack(cells[0]).detach()
            self.last_step.proto_grid = tuple(int(v) for v in lidar_bev.shape[-2:])
        return losses

    @staticmethod
    def _ori_hw(meta: dict) -> Tuple[int, int]:
        shape = meta.get('ori_shape')
        if shape is None:
            raise KeyError("camera rays: data sample meta lacks 'ori_shape' (the original image (H, W)); add "
                           "'ori_shape' to Pack3DDetInputs.meta_keys of the pre-training pipeline")
        shape = shape[0] if isinstance(shape, (list, tuple)) and isinstance(shape[0], (list, tuple)) else shape
        return int(shape[0]), int(shape[1])

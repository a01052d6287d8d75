"""CMCR pre-training of the BEVFusion LiDAR encoder (Zhang and Hou, 2024, "Is contrastive distillation enough
for learning comprehensive 3D representations?", CMCR): point-to-pixel contrastive distillation from a frozen
2D teacher on modality-shared features, masked image modelling and occupancy estimation on modality-specific
features conditioned on the unified codebook's quantised shared codes, a multi-modal unified codebook shared
by both modalities, and a decorrelation between shared and specific features.

Per iteration:
* image patches are masked; the **frozen 2D teacher** (``teacher_checkpoint``; refused without one, except as
  the named ``random_teacher_ablation``) encodes the masked images; trainable 1x1 heads give shared
  (``pixel_shared``, L2-normalised) and specific (``pixel_specific``) pixel features at stride 8;
* every pixel's shared feature is quantised by the :class:`UnifiedCodebook`; the MIM decoder reads
  ``pixel_specific + quantised code`` (straight-through) and reconstructs the (normalised) pixels by a 1x1
  conv and pixel shuffle; MSE on the masked patches;
* the LiDAR branch encodes the point cloud into the LiDAR BEV; occupancy queries near each surface along the
  LiDAR rays (:func:`occupancy_queries`); the occupancy head reads ``point_specific + quantised code of
  point_shared`` at the query's BEV cell plus the query height; binary cross-entropy;
* point-pixel pairs by projection, **pairs on masked pixels dropped**; InfoNCE (tau 0.07) between shared
  point and pixel features; the cross-modal commitment loss and CMCR's code-matching loss
  (:func:`code_matching_loss`); then the codebook's cross-modal EMA step on the pairs (all-reduced over
  ranks, re-normalised);
* decorrelation of shared and specific features of the paired points and pixels.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from torch import Tensor, nn

from clap_plugin.models.bevfusion import BEVFusionPretrainer
from clap_plugin.models.contrastive import (
    PairwisePretrainerMixin,
    contrastive_accuracy,
    info_nce,
    sample_pixel_features,
    subsample,
)
from clap_plugin.models.geometry.keyframe import keyframe_points
from clap_plugin.models.pretrain.masking import mask_image_patches

from .losses import code_matching_loss, cross_commitment_loss, decorrelation_loss, masked_patch_loss, occupancy_queries


@MODELS.register_module()
class CMCRPretrainer(PairwisePretrainerMixin, BEVFusionPretrainer):
    """CMCR on the BEVFusion encoders (submodule names of :class:`CLAPBEVFusion`). Trains the LiDAR encoder; the
    image side is a frozen 2D teacher with trainable heads, as the original.

    Args:
        lidar_channels: width of the LiDAR BEV; teacher_channels: width of the teacher level used.
        teacher, teacher_checkpoint, random_teacher_ablation: the frozen 2D teacher
            (:func:`clap_plugin.models.contrastive.build_frozen_teacher`); teacher_level: its output level.
        codebook: config of :class:`UnifiedCodebook` (400 x 64 by default); its ``dim`` is the embedding width.
        num_pairs: point-pixel pairs per iteration; temperature: InfoNCE tau.
        code_temperature: temperature of the code-matching InfoNCE.
        mim_mask_ratio, mim_patch_size: masked image modelling (share of patches zeroed, patch side).
        num_occ_queries: occupancy queries per sample; occ_max_offset: half-width (m) of the band around the
            surface they are drawn from; occ_hidden: width of the occupancy MLP.
        loss weights: ``loss_contrast_weight``, ``loss_mim_weight``, ``loss_occ_weight``, ``loss_code_weight``,
            ``loss_commit_weight``, ``loss_decorr_weight``.
        keyframe_dim: column of the sweep time lag, or None.
        **kwargs: encoder arguments of :class:`BEVFusionPretrainer`.
    """

    @classmethod
    def trained_encoder_modules(cls, model_cfg: Optional[dict] = None) -> tuple:
        """The encoder submodules this method trains (the LiDAR encoder; the 2D teacher is frozen).

        tools/export_pretrained.py exports only these; the others keep the fine-tune config's own init."""
        return ('pts_voxel_encoder', 'pts_middle_encoder')

    def __init__(self, lidar_channels: int, teacher_channels: int, teacher: Optional[dict] = None,
                 teacher_checkpoint: Optional[str] = None, random_teacher_ablation: bool = False,
                 teacher_level: int = 0,
                 codebook: dict = dict(type='UnifiedCodebook', num_codes=400, dim=64), num_pairs: int = 4096,
                 temperature: float = 0.07, code_temperature: float = 1.0, mim_mask_ratio: float = 0.5,
                 mim_patch_size: int = 32, num_occ_queries: int = 4096, occ_max_offset: float = 0.5,
                 occ_hidden: int = 64, loss_contrast_weight: float = 1.0, loss_mim_weight: float = 1.0,
                 loss_occ_weight: float = 1.0, loss_code_weight: float = 1.0, loss_commit_weight: float = 0.25,
                 loss_decorr_weight: float = 0.1, keyframe_dim: Optional[int] = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        if not (self.with_lidar and self.with_camera):
            raise ValueError('CMCR needs both the LiDAR and the camera branch')
        if num_pairs < 2:
            raise ValueError(f'num_pairs must be >= 2, got {num_pairs}')
        self.build_teacher('CMCR', kwargs['img_backbone'], teacher, teacher_checkpoint, random_teacher_ablation,
                           teacher_level)
        self.codebook = MODELS.build(codebook)
        dim = self.codebook.dim
        self.point_shared = nn.Linear(int(lidar_channels), dim)
        self.point_specific = nn.Linear(int(lidar_channels), dim)
        self.pixel_shared = nn.Conv2d(int(teacher_channels), dim, 1)
        self.pixel_specific = nn.Conv2d(int(teacher_channels), dim, 1)
        self.mim_decoder = nn.Conv2d(dim, 3 * 64, 1)  # up to stride 8 by pixel shuffle (checked in loss)
        self.occ_head = nn.Sequential(nn.Linear(dim + 1, int(occ_hidden)), nn.ReLU(inplace=True),
                                      nn.Linear(int(occ_hidden), 1))
        self.num_pairs = int(num_pairs)
        self.temperature = float(temperature)
        self.code_temperature = float(code_temperature)
        self.mim_mask_ratio = float(mim_mask_ratio)
        self.mim_patch_size = int(mim_patch_size)
        self.num_occ_queries = int(num_occ_queries)
        self.occ_max_offset = float(occ_max_offset)
        self.weights = dict(contrast=float(loss_contrast_weight), mim=float(loss_mim_weight),
                            occ=float(loss_occ_weight), code=float(loss_code_weight),
                            commit=float(loss_commit_weight), decorr=float(loss_decorr_weight))
        self.keyframe_dim = keyframe_dim

    @staticmethod
    def _linear(conv: nn.Conv2d, x: Tensor) -> Tensor:
        return F.linear(x, conv.weight.flatten(1), conv.bias)

    def visible_pairs(self, pairs: Dict[str, Tensor], patch_mask: Tensor) -> Dict[str, Tensor]:
        """The pairs whose pixel lies in an unmasked patch; ``patch_mask`` (B, N, gh, gw) is True where masked,
        pairs index images by ``img_idx`` (into B * N) at pixel ``uv`` (x, y)."""
        pm = patch_mask.flatten(0, 1)
        pu = (pairs['uv'][:, 0] // self.mim_patch_size).long().clamp(0, pm.shape[-1] - 1)
        pv = (pairs['uv'][:, 1] // self.mim_patch_size).long().clamp(0, pm.shape[-2] - 1)
        visible = (~pm[pairs['img_idx'], pv, pu]).nonzero(as_tuple=True)[0]
        return {k: v[visible] for k, v in pairs.items()}

    def _with_codes(self, specific: Tensor, shared: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """``specific + straight-through quantised code of normalize(shared)``, rows are features."""
        q = self.codebook.quantize(F.normalize(shared, dim=1))
        return specific + q['quantized'], q

    def loss(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample], **kwargs) -> dict:
        metas, points, imgs = self.batch_inputs(batch_inputs_dict, batch_data_samples, 'CMCR')
        n_cam, img_shape = imgs.shape[1], imgs.shape[-2:]
        losses = {}

        # masked image modelling from the frozen teacher's features of the masked images
        masked, patch_mask = mask_image_patches(imgs, self.mim_patch_size, self.mim_mask_ratio)
        feats = self.teacher_features(masked.flatten(0, 1))
        n_img, _, h, w = feats.shape
        if (h * 8, w * 8) != tuple(img_shape):
            raise ValueError(f'CMCR masked image modelling expects teacher features at stride 8, got {h}x{w} for '
                             f'{tuple(img_shape)} images (model.teacher_level)')
        dim = self.codebook.dim
        spec_dense = self.pixel_specific(feats).permute(0, 2, 3, 1).reshape(-1, dim)
        shared_dense = self.pixel_shared(feats).permute(0, 2, 3, 1).reshape(-1, dim)
        mim_in, q_pix = self._with_codes(spec_dense, shared_dense)
        mim_in = mim_in.reshape(n_img, h, w, dim).permute(0, 3, 1, 2)
        recon = F.pixel_shuffle(self.mim_decoder(mim_in), 8)
        losses['loss_mim'] = self.weights['mim'] * masked_patch_loss(recon, imgs.flatten(0, 1),
                                                                     patch_mask.flatten(0, 1), self.mim_patch_size)

        # occupancy estimation: specific point features plus their quantised shared codes
        bev = self.extract_pts_feat(points)
        cams = self.camera_matrices(metas, n_cam, imgs)
        occ_logits, occ_targets = [], []
        for i, pts in enumerate(points):
            kf, _ = keyframe_points(pts, self.point_cloud_range, self.keyframe_dim)
            q = occupancy_queries(kf[:, :3], cams['lidar_aug_matrix'][i, :3, 3], self.num_occ_queries,
                                  self.occ_max_offset)
            bq = self.bev_point_features(
                bev, torch.full((q['queries'].shape[0], ), i, dtype=torch.long, device=bev.device), q['queries'])
            f, _ = self._with_codes(self.point_specific(bq), self.point_shared(bq))
            height = (q['queries'][:, 2:3] / self.occ_max_offset).to(f.dtype)
            occ_logits.append(self.occ_head(torch.cat([f, height], 1))[:, 0])
            occ_targets.append(q['targets'].to(f.dtype))
        occ_logits, occ_targets = torch.cat(occ_logits), torch.cat(occ_targets)
        losses['loss_occ'] = self.weights['occ'] * F.binary_cross_entropy_with_logits(occ_logits, occ_targets)

        # point-pixel pairs off the masked patches: contrastive distillation, codebook, decorrelation
        pairs = self.gather_pairs(points, cams, n_cam, img_shape, self.keyframe_dim)
        pairs = self.visible_pairs(pairs, patch_mask)
        sel = subsample(pairs['xyz'].shape[0], self.num_pairs, imgs.device)
        if sel.numel() < 2:
            raise RuntimeError(f'CMCR: only {sel.numel()} LiDAR points project onto unmasked pixels of this batch')
        pairs = {k: v[sel] for k, v in pairs.items()}
        pf = self.bev_point_features(bev, pairs['batch_idx'], pairs['xyz'])
        xf = sample_pixel_features(feats, pairs['img_idx'], pairs['uv'], img_shape)
        shared_p = F.normalize(self.point_shared(pf), dim=1)
        shared_x = F.normalize(self._linear(self.pixel_shared, xf), dim=1)
        spec_p = self.point_specific(pf)
        spec_x = self._linear(self.pixel_specific, xf)
        losses['loss_contrast'] = self.weights['contrast'] * info_nce(shared_p, shared_x, self.temperature,
                                                                       normalize=False)
        qp, qx = self.codebook.quantize(shared_p), self.codebook.quantize(shared_x)
        losses['loss_commit'] = self.weights['commit'] * cross_commitment_loss(shared_p, shared_x, qp['codes'],
                                                                               qx['codes'])
        dist_p = self.codebook.distances(shared_p).clamp(min=0).sqrt()
        dist_x = self.codebook.distances(shared_x).clamp(min=0).sqrt()
        losses['loss_code'] = self.weights['code'] * code_matching_loss(dist_p, dist_x, self.code_temperature)
        losses['loss_decorr'] = self.weights['decorr'] * (decorrelation_loss(shared_p, spec_p)
                                                          + decorrelation_loss(shared_x, spec_x))
        if self.training:
            self.codebook.update_cross(shared_p, shared_x)
        losses['contrast_acc'] = contrastive_accuracy(shared_p, shared_x)
        losses['occ_acc'] = ((occ_logits.detach() > 0).to(occ_targets.dtype) == occ_targets).float().mean()
        losses['code_perplexity'] = 0.5 * (qp['perplexity'] + qx['perplexity'])
        losses['pixel_code_perplexity'] = q_pix['perplexity']
        losses['cmcr_pairs'] = shared_p.new_tensor(float(shared_p.shape[0]))
        return losses

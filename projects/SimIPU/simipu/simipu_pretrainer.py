"""SimIPU pre-training of the BEVFusion encoders (Li et al., AAAI 2022, "SimIPU: simple 2D image and 3D point
cloud unsupervised pre-training for spatial-aware visual representations").

* Intra-modal spatial perception: a second LiDAR view is made in the model by a random similarity transform
  (rotation +-90 deg, scale 0.75-1.25, flip, as the original), point dropout and jitter of the pipeline's
  (already augmented) view. Two independent keypoint sets are drawn by farthest-point sampling, one per view;
  the second view's are brought back by the inverse transform and matched one-to-one to the first view's by
  the Hungarian algorithm on their distances (scipy); matches farther than ``match_threshold`` are dropped
  (None: none, as the original). InfoNCE from view-1 keypoint features to the stop-gradient view-2 features.
* Inter-modal feature interaction: keyframe points are projected into the six images; InfoNCE from the image
  features (image backbone + neck, the branch SimIPU is about) at the projected pixels to the point features,
  which are a stop-gradient target by default (``point_stop_grad``): as in the original, the point encoder is
  the image's spatial teacher and only the intra-modal loss trains it.
Point features are read from the LiDAR BEV at each point's cell; 3-layer projection MLPs with BN to 128;
tau 0.07.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
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

from .matching import farthest_point_sampling, match_keypoints, random_view_transform, transform_points


class ProjectionMLP(nn.Sequential):
    """SimIPU's projection head: (Linear -> BN -> ReLU) x (num_layers - 1), then Linear -> BN."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 3) -> None:
        if num_layers < 2:
            raise ValueError(f'ProjectionMLP needs num_layers >= 2, got {num_layers}')
        layers, c = [], in_channels
        for _ in range(num_layers - 1):
            layers += [nn.Linear(c, hidden_channels), nn.BatchNorm1d(hidden_channels), nn.ReLU(inplace=True)]
            c = hidden_channels
        layers += [nn.Linear(c, out_channels), nn.BatchNorm1d(out_channels)]
        super().__init__(*layers)


@MODELS.register_module()
class SimIPUPretrainer(PairwisePretrainerMixin, BEVFusionPretrainer):
    """SimIPU on the BEVFusion encoders (submodule names of :class:`CLAPBEVFusion`). Trains the LiDAR encoder
    and the image backbone + neck; the view transform, fuser and BEV backbone are exported as initialised.

    Args:
        lidar_channels: channels of the LiDAR BEV; image_channels: channels of the image neck output.
        embed_dim: output width of the projection MLPs (128); hidden_channels: their hidden width.
        num_keypoints: keypoints drawn per sample for the intra-modal loss.
        num_pairs: point-pixel pairs per iteration (over the batch) for the inter-modal loss.
        temperature: InfoNCE tau.
        match_threshold: matched keypoints farther apart than this (metres, after undoing the transform) are
            not used; None: all Hungarian matches are used (the original).
        point_stop_grad: stop the gradient of the inter-modal loss on the point side (the original; default).
            False lets it train the LiDAR encoder and ``point_head`` too (co-training, an ablation).
        head_layers: layers of the projection MLPs (3 in the original).
        rot_range, scale_range, translation_std, flip_prob: the second view's random similarity transform.
        point_drop_ratio: share of points dropped from the second view; jitter_std: its xyz noise (metres).
        loss_intra_weight, loss_inter_weight: loss weights.
        keyframe_dim: column of the sweep time lag (keypoints and pairs use keyframe points), or None.
        **kwargs: encoder arguments of :class:`BEVFusionPretrainer`.
    """

    @classmethod
    def trained_encoder_modules(cls, model_cfg: Optional[dict] = None) -> tuple:
        """The encoder submodules this method trains (the LiDAR encoder by the intra-modal loss, the image
        backbone + neck by the inter-modal loss).

        tools/export_pretrained.py exports only these; the others keep the fine-tune config's own init."""
        return ('img_backbone', 'img_neck', 'pts_voxel_encoder', 'pts_middle_encoder')

    def __init__(self, lidar_channels: int, image_channels: int, embed_dim: int = 128, hidden_channels: int = 256,
                 num_keypoints: int = 1024, num_pairs: int = 4096, temperature: float = 0.07,
                 match_threshold: Optional[float] = None, rot_range: Sequence[float] = (-1.5707963, 1.5707963),
                 scale_range: Sequence[float] = (0.75, 1.25), translation_std: float = 0.0, flip_prob: float = 0.5,
                 point_stop_grad: bool = True, head_layers: int = 3,
                 point_drop_ratio: float = 0.1, jitter_std: float = 0.01, loss_intra_weight: float = 1.0,
                 loss_inter_weight: float = 1.0, keyframe_dim: Optional[int] = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        if not (self.with_lidar and self.with_camera):
            raise ValueError('SimIPU needs both the LiDAR and the camera branch')
        if not 0.0 <= point_drop_ratio < 1.0:
            raise ValueError(f'point_drop_ratio must be in [0, 1), got {point_drop_ratio}')
        if num_keypoints < 2 or num_pairs < 2:
            raise ValueError('num_keypoints and num_pairs must be >= 2')
        self.point_head = ProjectionMLP(int(lidar_channels), int(hidden_channels), int(embed_dim), head_layers)
        self.intra_head = ProjectionMLP(int(lidar_channels), int(hidden_channels), int(embed_dim), head_layers)
        self.image_head = ProjectionMLP(int(image_channels), int(hidden_channels), int(embed_dim), head_layers)
        self.point_stop_grad = bool(point_stop_grad)
        self.num_keypoints = int(num_keypoints)
        self.num_pairs = int(num_pairs)
        self.temperature = float(temperature)
        self.match_threshold = float('inf') if match_threshold is None else float(match_threshold)
        self.view_aug = dict(rot_range=tuple(rot_range), scale_range=tuple(scale_range),
                             translation_std=float(translation_std), flip_prob=float(flip_prob))
        self.point_drop_ratio = float(point_drop_ratio)
        self.jitter_std = float(jitter_std)
        self.loss_intra_weight = float(loss_intra_weight)
        self.loss_inter_weight = float(loss_inter_weight)
        self.keyframe_dim = keyframe_dim

    # ------------------------------------------------------------------ second view and keypoints
    def second_view(self, points: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(P, C) -> (second view (P2, C), its transform (4, 4) from the first view, kept indices (P2,))."""
        keep = (torch.rand(points.shape[0], device=points.device) >= self.point_drop_ratio).nonzero(
            as_tuple=True)[0]
        pts = points[keep].clone()
        if self.jitter_std > 0:
            pts[:, :3] = pts[:, :3] + torch.randn_like(pts[:, :3]) * self.jitter_std
        mat = random_view_transform(**self.view_aug, dtype=points.dtype).to(points.device)
        return transform_points(pts, mat), mat, keep

    def _inside(self, xyz: Tensor) -> Tensor:
        x0, y0, z0, x1, y1, z1 = self.point_cloud_range
        return (xyz[:, 0] >= x0) & (xyz[:, 0] < x1) & (xyz[:, 1] >= y0) & (xyz[:, 1] < y1) & (xyz[:, 2] >= z0) & \
            (xyz[:, 2] < z1)

    def keypoint_matches(self, points: Tensor, view2: Tensor, mat: Tensor) -> Dict[str, Tensor]:
        """Two independent keypoint sets of one sample, matched by Hungarian on distances after undoing ``mat``.

        View-1 keypoints: ``num_keypoints`` keyframe points in range by farthest-point sampling; view-2
        keypoints: as many by farthest-point sampling of the view-2 keyframe points in range (a different
        point subset, a different start). The view-2 keypoints are mapped back with ``mat``'s inverse and
        matched one-to-one. Returns ``xyz1`` and ``xyz2`` (M, 3), each in its own view's frame, and
        ``distance`` (M,), the matched distance in the view-1 frame.
        """
        kf1, _ = keyframe_points(points, self.point_cloud_range, self.keyframe_dim)
        kf2, _ = keyframe_points(view2, self.point_cloud_range, self.keyframe_dim)
        xyz1 = kf1[farthest_point_sampling(kf1[:, :3], self.num_keypoints), :3]
        xyz2 = kf2[farthest_point_sampling(kf2[:, :3], self.num_keypoints), :3]
        back = transform_points(xyz2, torch.inverse(mat.double()).to(xyz2.dtype))
        ia, ib = match_keypoints(xyz1, back, self.match_threshold)
        return dict(xyz1=xyz1[ia], xyz2=xyz2[ib], distance=(xyz1[ia] - back[ib]).norm(dim=1))

    # ------------------------------------------------------------------ losses
    def image_features(self, imgs: Tensor) -> Tensor:
        """(B, N, 3, H, W) -> (B * N, C, h, w) image backbone + neck features."""
        x = self.img_neck(self.img_backbone(imgs.flatten(0, 1)))
        if not isinstance(x, Tensor):
            x = x[0]
        return x

    def loss(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample], **kwargs) -> dict:
        metas, points, imgs = self.batch_inputs(batch_inputs_dict, batch_data_samples, 'SimIPU')
        n_cam, img_shape = imgs.shape[1], imgs.shape[-2:]

        views2, matches = [], []
        for b, pts in enumerate(points):
            v2, mat, _ = self.second_view(pts)
            views2.append(v2)
            m = self.keypoint_matches(pts, v2, mat)
            m['batch_idx'] = torch.full((m['xyz1'].shape[0], ), b, dtype=torch.long, device=pts.device)
            matches.append(m)
        matches = {k: torch.cat([m[k] for m in matches]) for k in matches[0]}
        if matches['xyz1'].shape[0] < 2:
            raise RuntimeError(f'SimIPU: only {matches["xyz1"].shape[0]} keypoints matched between the views '
                               f'(match_threshold={self.match_threshold} m); raise it or num_keypoints')
        bev1 = self.extract_pts_feat(points)
        bev2 = self.extract_pts_feat(views2)
        f1 = self.intra_head(self.bev_point_features(bev1, matches['batch_idx'], matches['xyz1']))
        f2 = self.intra_head(self.bev_point_features(bev2, matches['batch_idx'], matches['xyz2']))
        loss_intra = info_nce(f1, f2.detach(), self.temperature)  # the original: view 2 is the target

        cams = self.camera_matrices(metas, n_cam, imgs)
        pairs = self.gather_pairs(points, cams, n_cam, img_shape, self.keyframe_dim)
        sel = subsample(pairs['xyz'].shape[0], self.num_pairs, imgs.device)
        if sel.numel() < 2:
            raise RuntimeError(f'SimIPU: only {sel.numel()} LiDAR points project into the images of this batch')
        pairs = {k: v[sel] for k, v in pairs.items()}
        img_feats = self.image_head(sample_pixel_features(self.image_features(imgs), pairs['img_idx'],
                                                          pairs['uv'], img_shape))
        pt_feats = self.point_head(self.bev_point_features(bev1, pairs['batch_idx'], pairs['xyz']))
        if self.point_stop_grad:
            pt_feats = pt_feats.detach()
        loss_inter = info_nce(img_feats, pt_feats, self.temperature)
        return dict(loss_intra=self.loss_intra_weight * loss_intra,
                    loss_inter=self.loss_inter_weight * loss_inter,
                    intra_acc=contrastive_accuracy(f1, f2), inter_acc=contrastive_accuracy(img_feats, pt_feats),
                    intra_matches=bev1.new_tensor(float(f1.shape[0])),
                    intra_match_dist=matches['distance'].mean().detach())

"""PPKT pre-training of the BEVFusion LiDAR branch (Liu et al., 2021, "Learning from 2D: contrastive
pixel-to-point knowledge transfer for 3D pretraining").

A frozen 2D teacher learnt on 2D data (``teacher_checkpoint``: e.g. tools/train_2d_teacher.py's output or
ImageNet weights on disk; without one the model refuses to build, except as the named
``random_teacher_ablation``) encodes the six images; an
upsampling projection layer brings its features to D channels at pixel resolution. Keyframe LiDAR points are
projected into the images (back-projection) to form point-pixel pairs; each point's feature is read from the
LiDAR BEV at its cell and projected to D. InfoNCE from point to pixel over ``num_pairs`` sampled pairs.
"""
from typing import List, Optional

from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from torch import nn

from clap_plugin.models.bevfusion import BEVFusionPretrainer
from clap_plugin.models.contrastive import (
    PairwisePretrainerMixin,
    UpsamplingProjection,
    bev_cell_index,
    contrastive_accuracy,
    info_nce,
    one_per_group,
    subsample,
)


@MODELS.register_module()
class PPKTPretrainer(PairwisePretrainerMixin, BEVFusionPretrainer):
    """PPKT on the BEVFusion encoders (submodule names of :class:`CLAPBEVFusion`; only the LiDAR branch is
    trained, the camera branch is exported as initialised).

    Args:
        teacher_channels: channels of the teacher feature level used.
        lidar_channels: channels of the LiDAR BEV (``pts_middle_encoder`` output).
        teacher: config of the frozen 2D teacher's architecture; None: that of ``img_backbone``.
        teacher_checkpoint: local file with the teacher's weights (bare, ``img_backbone.`` or ``backbone.``
            prefix), e.g. written by tools/train_2d_teacher.py. Required, unless ``teacher`` carries its own
            Pretrained ``init_cfg`` or ``random_teacher_ablation`` is set.
        random_teacher_ablation: the named ablation "PPKT with a random teacher": the teacher is the image
            backbone as initialised; logged as such. Not the method.
        teacher_level: which output of a multi-level teacher to use (0: the finest).
        embed_dim: D, the shared embedding width.
        num_pairs: point-pixel pairs sampled per iteration (over the batch).
        temperature: InfoNCE tau (0.07 outdoors; the original indoor paper used 0.04).
        keyframe_dim: column of the sweep time lag (pairs use keyframe points only), None if all are keyframe.
        pair_mode: ``'cell'`` (default): one pair per (LiDAR BEV cell, camera), a random one of the points of
            that cell seen by that camera. Point features are read from the stride-8 BEV, so points sharing a
            cell have (nearly) the same feature; drawn per point they would be each other's false negatives.
            ``'point'``: pairs drawn uniformly over points, as SLidR does with its per-point U-Net features.
        **kwargs: encoder arguments of :class:`BEVFusionPretrainer`.
    """

    @classmethod
    def trained_encoder_modules(cls, model_cfg: Optional[dict] = None) -> tuple:
        """The encoder submodules this method trains (the LiDAR encoder; the teacher is frozen, the camera
        branch gets no gradient).

        tools/export_pretrained.py exports only these; the others keep the fine-tune config's own init."""
        return ('pts_voxel_encoder', 'pts_middle_encoder')

    def __init__(self, teacher_channels: int, lidar_channels: int, teacher: Optional[dict] = None,
                 teacher_checkpoint: Optional[str] = None, random_teacher_ablation: bool = False,
                 teacher_level: int = 0, embed_dim: int = 64, num_pairs: int = 4096, temperature: float = 0.07,
                 keyframe_dim: Optional[int] = 4, pair_mode: str = 'cell', **kwargs) -> None:
        super().__init__(**kwargs)
        if not (self.with_lidar and self.with_camera):
            raise ValueError('PPKT pairs LiDAR points with image pixels: it needs both branches')
        if num_pairs < 2:
            raise ValueError(f'num_pairs must be >= 2, got {num_pairs}')
        if pair_mode not in ('cell', 'point'):
            raise ValueError(f"model.pair_mode must be 'cell' or 'point', got {pair_mode!r}")
        self.pair_mode = pair_mode
        self.build_teacher('PPKT', kwargs['img_backbone'], teacher, teacher_checkpoint, random_teacher_ablation,
                           teacher_level)
        self.pixel_projection = UpsamplingProjection(int(teacher_channels), int(embed_dim))
        self.point_projection = nn.Linear(int(lidar_channels), int(embed_dim))
        self.num_pairs = int(num_pairs)
        self.temperature = float(temperature)
        self.keyframe_dim = keyframe_dim

    def pair_features(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample]):
        """(point embeddings (M, D), pixel embeddings (M, D), pairs) of ``num_pairs`` sampled point-pixel pairs;
        row i of both is a positive pair."""
        metas, points, imgs = self.batch_inputs(batch_inputs_dict, batch_data_samples, 'PPKT')
        n_cam, img_shape = imgs.shape[1], imgs.shape[-2:]
        cams = self.camera_matrices(metas, n_cam, imgs)
        pairs = self.gather_pairs(points, cams, n_cam, img_shape, self.keyframe_dim)
        lidar_bev = self.extract_pts_feat(points)
        if self.pair_mode == 'cell':  # one pair per (image, BEV cell); img_idx already includes the sample
            cells = bev_cell_index(pairs['xyz'][:, :2], self.point_cloud_range, lidar_bev.shape[-2:])
            pick = one_per_group(pairs['img_idx'] * (lidar_bev.shape[-2] * lidar_bev.shape[-1]) + cells)
            pairs = {k: v[pick] for k, v in pairs.items()}
        keep = subsample(pairs['xyz'].shape[0], self.num_pairs, imgs.device)
        if keep.numel() < 2:
            raise RuntimeError(f'PPKT: only {keep.numel()} LiDAR points project into the images of this batch '
                               f'(samples {[m.get("sample_idx") for m in metas]}); check the calibration')
        pairs = {k: v[keep] for k, v in pairs.items()}
        point_feats = self.point_projection(self.bev_point_features(lidar_bev, pairs['batch_idx'], pairs['xyz']))
        pixel_feats = self.pixel_projection.sample(self.teacher_features(imgs.flatten(0, 1)), pairs['img_idx'],
                                                   pairs['uv'], img_shape)
        return point_feats, pixel_feats, pairs

    def loss(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample], **kwargs) -> dict:
        point_feats, pixel_feats, pairs = self.pair_features(batch_inputs_dict, batch_data_samples)
        return dict(loss_ppkt=info_nce(point_feats, pixel_feats, self.temperature),
                    ppkt_acc=contrastive_accuracy(point_feats, pixel_feats),
                    ppkt_pairs=point_feats.new_tensor(float(point_feats.shape[0])))

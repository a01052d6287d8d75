"""BEVFusion-style camera + LiDAR fusion detector (mmdet3d projects/BEVFusion lidar-cam layout): the encoders of
:class:`BEVFusionEncoder` and a detection head on the fused BEV."""
from typing import List, Optional

from mmdet3d.models import Base3DDetector
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from torch import Tensor

from .bev_encoder import BEVFusionEncoder


@MODELS.register_module()
class CLAPBEVFusion(BEVFusionEncoder, Base3DDetector):
    """Fusion detector with BEVFusion's submodule names (checkpoints are interchangeable).

    Args:
        bbox_head: detection head config (e.g. ``CLAPTransFusionHead``) on the fused BEV.
        **kwargs: the encoder arguments of :class:`BEVFusionEncoder`.
    """

    def __init__(self, bbox_head: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        if bbox_head is None:
            raise ValueError('CLAPBEVFusion needs a bbox_head (the encoders alone are BEVFusionEncoder)')
        self.bbox_head = MODELS.build(bbox_head)

    def extract_feat(self, batch_inputs_dict: dict, batch_input_metas: List[dict]) -> List[Tensor]:
        """Fused BEV as the one-level feature list the head reads: [(B, 512, X, Y)]."""
        return [self.extract_bev(batch_inputs_dict, batch_input_metas)['fused_bev']]

    def loss(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample], **kwargs) -> dict:
        """Head losses for a batch with ``gt_instances_3d``."""
        metas = [s.metainfo for s in batch_data_samples]
        feats = self.extract_feat(batch_inputs_dict, metas)
        return self.bbox_head.loss(feats, batch_data_samples)

    def predict(self, batch_inputs_dict: dict, batch_data_samples: List[Det3DDataSample],
                **kwargs) -> List[Det3DDataSample]:
        """Detections as ``pred_instances_3d`` (``bboxes_3d``, ``scores_3d``, ``labels_3d``)."""
        metas = [s.metainfo for s in batch_data_samples]
        feats = self.extract_feat(batch_inputs_dict, metas)
        results = self.bbox_head.predict(feats, metas)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _forward(self, batch_inputs_dict: dict, batch_data_samples: Optional[List[Det3DDataSample]] = None,
                 **kwargs):
        """Raw head outputs (no post-processing)."""
        metas = [s.metainfo for s in batch_data_samples] if batch_data_samples is not None else [
            {} for _ in range(len(batch_inputs_dict.get('points') or batch_inputs_dict['imgs']))]
        return self.bbox_head(self.extract_feat(batch_inputs_dict, metas), metas)

"""TransFusion detection head of BEVFusion and its box coder, assigner, match costs and IoU."""
from .bbox_coder import CLAPTransFusionBBoxCoder
from .decoder_layer import CLAPLearnedPositionEncoding, CLAPTransformerDecoderLayer
from .hungarian_assigner import CLAPHungarianAssigner3D
from .iou3d import CLAPBboxOverlaps3D, lidar_bbox_overlaps_3d
from .match_costs import CLAPBBoxBEVL1Cost, CLAPIoU3DCost
from .transfusion_head import CLAPTransFusionHead

__all__ = [
    'CLAPTransFusionBBoxCoder', 'CLAPLearnedPositionEncoding', 'CLAPTransformerDecoderLayer',
    'CLAPHungarianAssigner3D', 'CLAPBboxOverlaps3D', 'lidar_bbox_overlaps_3d', 'CLAPBBoxBEVL1Cost',
    'CLAPIoU3DCost', 'CLAPTransFusionHead'
]

"""BEVFusion-style encoders, the fusion detector and the pre-trainer base (checkpoint-compatible with mmdet3d's
projects/BEVFusion)."""
from . import heads  # noqa: F401  (TransFusion head, registered)
from .bev_encoder import BEVFusionEncoder
from .bev_pool import bev_pool, bev_pool_reference
from .bev_pretrainer import BEVFusionPretrainer
from .conv_fuser import CLAPConvFuser
from .depth_lss import CLAPDepthLSSTransform
from .detector import CLAPBEVFusion
from .lss_fpn import CLAPGeneralizedLSSFPN
from .sparse_encoder import CLAPSparseEncoder
from .swin import CLAPSwinTransformer
from .voxelization import HardVoxelization

__all__ = [
    'BEVFusionEncoder', 'BEVFusionPretrainer', 'bev_pool', 'bev_pool_reference', 'CLAPConvFuser',
    'CLAPDepthLSSTransform', 'CLAPBEVFusion', 'CLAPGeneralizedLSSFPN', 'CLAPSparseEncoder', 'CLAPSwinTransformer',
    'HardVoxelization'
]

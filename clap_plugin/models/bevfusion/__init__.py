"""BEVFusion-style encoders and fusion detector (checkpoint-compatible with mmdet3d's projects/BEVFusion)."""
from . import heads  # noqa: F401  (TransFusion head, registered)
from .bev_pool import bev_pool, bev_pool_reference
from .conv_fuser import CLAPConvFuser
from .depth_lss import CLAPDepthLSSTransform
from .detector import CLAPBEVFusion
from .lss_fpn import CLAPGeneralizedLSSFPN
from .sparse_encoder import CLAPSparseEncoder
from .swin import CLAPSwinTransformer
from .voxelization import HardVoxelization

__all__ = [
    'bev_pool', 'bev_pool_reference', 'CLAPConvFuser', 'CLAPDepthLSSTransform', 'CLAPBEVFusion',
    'CLAPGeneralizedLSSFPN', 'CLAPSparseEncoder', 'CLAPSwinTransformer', 'HardVoxelization'
]

"""CMCR modules, registered into mmdet3d's MODELS registry on import."""
from .cmcr_pretrainer import CMCRPretrainer
from .codebook import UnifiedCodebook
from .losses import decorrelation_loss, masked_patch_loss, occupancy_queries

__all__ = ['CMCRPretrainer', 'UnifiedCodebook', 'decorrelation_loss', 'masked_patch_loss', 'occupancy_queries']

"""BEVFusion-style data transforms: multi-view and point loading (bad samples named), image / global
augmentation, GridMask, GT sampling."""
from .bad_sample import BadSampleError, skipped_bad_samples
from .bev_flip import CLAPBEVFlip3D
from .db_sampler import CLAPDataBaseSampler
from .global_aug import CLAPGlobalRotScaleTrans
from .grid_mask import CLAPGridMask, grid_mask
from .image_aug import CLAPImageAug3D, image_aug_affine, warp_image
from .loading import CLAPLoadMultiViewImageFromFiles
from .points_loading import CLAPLoadPointsFromFile, CLAPLoadPointsFromMultiSweeps

__all__ = [
    'CLAPBEVFlip3D', 'CLAPDataBaseSampler', 'CLAPGlobalRotScaleTrans', 'CLAPGridMask', 'grid_mask', 'CLAPImageAug3D',
    'image_aug_affine', 'warp_image', 'CLAPLoadMultiViewImageFromFiles', 'CLAPLoadPointsFromFile',
    'CLAPLoadPointsFromMultiSweeps', 'BadSampleError', 'skipped_bad_samples'
]

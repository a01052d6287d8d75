"""PPKT modules, registered into mmdet3d's MODELS registry on import."""
from .contrastive import (UpsamplingProjection, info_nce, point_pixel_pairs, sample_bev_at_points,
                          sample_pixel_features)
from .ppkt_pretrainer import PPKTPretrainer

__all__ = ['UpsamplingProjection', 'info_nce', 'point_pixel_pairs', 'sample_bev_at_points',
           'sample_pixel_features', 'PPKTPretrainer']

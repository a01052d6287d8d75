"""PPKT modules, registered into mmdet3d's MODELS registry on import."""
from .contrastive import (UpsamplingProjection, bev_cell_index, info_nce, one_per_group, point_pixel_pairs,
                          sample_bev_at_points, sample_pixel_features)
from .ppkt_pretrainer import PPKTPretrainer

__all__ = ['UpsamplingProjection', 'bev_cell_index', 'one_per_group',
           'info_nce', 'point_pixel_pairs', 'sample_bev_at_points',
           'sample_pixel_features', 'PPKTPretrainer']

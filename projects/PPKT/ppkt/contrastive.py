"""The point-pixel pair and InfoNCE helpers PPKT uses; they live in :mod:`clap_plugin.models.contrastive.pairs`
(shared with SimIPU and CMCR, so that each project imports only clap_plugin and itself)."""
from clap_plugin.models.contrastive.pairs import (UpsamplingProjection, bev_cell_index,  # noqa: F401
                                                  contrastive_accuracy, info_nce, keyframe_points, one_per_group,
                                                  point_pixel_pairs, sample_bev_at_points, sample_pixel_features,
                                                  subsample)

"""Pieces shared by the cross-modal baselines (projects/PPKT, projects/SimIPU, projects/CMCR): point-pixel
pairs, BEV point features and InfoNCE (:mod:`.pairs`), and the frozen 2D teacher (:mod:`.teacher`)."""
from .pairs import (
    PairwisePretrainerMixin,
    UpsamplingProjection,
    bev_cell_index,
    contrastive_accuracy,
    info_nce,
    keyframe_points,
    one_per_group,
    point_pixel_pairs,
    sample_bev_at_points,
    sample_pixel_features,
    subsample,
)
from .teacher import TeacherError, build_frozen_teacher, teacher_summary

__all__ = ['PairwisePretrainerMixin', 'UpsamplingProjection', 'bev_cell_index', 'contrastive_accuracy', 'info_nce',
           'keyframe_points', 'one_per_group', 'point_pixel_pairs', 'sample_bev_at_points', 'sample_pixel_features',
           'subsample', 'TeacherError', 'build_frozen_teacher', 'teacher_summary']

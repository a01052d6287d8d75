"""Pieces shared by the cross-modal baselines (projects/PPKT, projects/SimIPU, projects/CMCR): InfoNCE
(:mod:`.info_nce`), point-pixel pairs (:mod:`.pairs`), the features at their ends (:mod:`.point_features`), the
pair-based pre-trainer base (:mod:`.pair_pretrainer`) and the frozen 2D teacher (:mod:`.teacher`). Keyframe
selection and the projection are in :mod:`clap_plugin.models.geometry`."""
from .info_nce import contrastive_accuracy, info_nce
from .pair_pretrainer import PairwisePretrainerMixin
from .pairs import bev_cell_index, one_per_group, point_pixel_pairs, subsample
from .point_features import UpsamplingProjection, sample_bev_at_points, sample_pixel_features
from .teacher import TeacherError, build_frozen_teacher, teacher_summary

__all__ = ['PairwisePretrainerMixin', 'UpsamplingProjection', 'bev_cell_index', 'contrastive_accuracy', 'info_nce',
           'one_per_group', 'point_pixel_pairs', 'sample_bev_at_points', 'sample_pixel_features',
           'subsample', 'TeacherError', 'build_frozen_teacher', 'teacher_summary']

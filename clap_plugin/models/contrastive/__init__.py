"""Pieces shared by the cross-modal distillation baselines (projects/PPKT, projects/CMCR): the frozen 2D
teacher that they distil from."""
from .teacher import TeacherError, build_frozen_teacher, teacher_summary

__all__ = ['TeacherError', 'build_frozen_teacher', 'teacher_summary']

"""Rendering: twice-differentiable trilinear interpolation, NeuS field and renderer, CLAP rendering head."""
from .neus_field import NeuSFieldMLPs, VolumeSDFField
from .neus_volume_renderer import render_rays
from .rendering_head import CLAPRenderingHead
from .trilinear_interpolation import trilinear_interpolate

__all__ = ['CLAPRenderingHead', 'NeuSFieldMLPs', 'VolumeSDFField', 'render_rays', 'trilinear_interpolate']

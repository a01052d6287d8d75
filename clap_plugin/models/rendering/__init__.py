"""Rendering: the ray batch, the NeuS field (SDF, colour, sharpness, opacities), along-ray sampling,
compositing, their wiring (render_rays) and the CLAP rendering head."""
from .along_ray_sampler import NeuSAlongRaySampler, sample_pdf, stratified_samples
from .compositor import Composite, alpha_to_weights, composite
from .neus_field import NeuSField, VolumeSDFField, neus_alpha
from .ray_batch import RayBatch, as_ray_batch
from .ray_box import ray_box_exit_axis, ray_box_intersection
from .render_rays import render_rays
from .rendering_head import CLAPRenderingHead
from .trilinear_interpolation import trilinear_interpolate

__all__ = [
    'CLAPRenderingHead', 'Composite', 'NeuSAlongRaySampler', 'NeuSField', 'RayBatch', 'VolumeSDFField',
    'alpha_to_weights', 'as_ray_batch', 'composite', 'neus_alpha', 'ray_box_exit_axis', 'ray_box_intersection',
    'render_rays', 'sample_pdf', 'stratified_samples', 'trilinear_interpolate'
]

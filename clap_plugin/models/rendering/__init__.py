"""Rendering: ray generation and the ray batch, the NeuS field (SDF, colour, sharpness, opacities), along-ray
sampling, compositing, their wiring (render_rays) and the CLAP rendering head."""
from .along_ray_sampling import NeuSAlongRaySampler, sample_pdf, stratified_samples
from .compositor import Composite, alpha_to_weights, composite
from .neus_field import NeuSField, VolumeSDFField, neus_alpha
from .ray_batch import RayBatch
from .ray_box import ray_box_exit_axis, ray_box_intersection
from .ray_generation import (
    SensorView,
    camera_rays,
    gather_pixels,
    lidar_rays,
    pixels_inside_original,
    selected_rays,
    sensor_view,
    sky_rays,
    sparse_depth,
)
from .render_rays import render_rays
from .rendering_head import CLAPRenderingHead
from .trilinear_interpolation import trilinear_interpolate

__all__ = [
    'CLAPRenderingHead', 'Composite', 'NeuSAlongRaySampler', 'NeuSField', 'RayBatch', 'SensorView', 'VolumeSDFField',
    'alpha_to_weights', 'camera_rays', 'composite', 'gather_pixels', 'lidar_rays', 'neus_alpha',
    'pixels_inside_original', 'ray_box_exit_axis', 'ray_box_intersection', 'render_rays', 'sample_pdf',
    'selected_rays', 'sensor_view', 'sky_rays', 'sparse_depth', 'stratified_samples', 'trilinear_interpolate'
]

"""What the pre-trainer shows of one training step: typed records between the model and the visualisation hook.

The hook asks with a :class:`VisualsRequest`; the next training step keeps a :class:`StepRecord`; the model turns
it into a :class:`PretrainVisuals` (detached, on the CPU). The hook only schedules and writes
(``clap_plugin.visualization``).
"""
from dataclasses import dataclass
from typing import Optional, Sequence

from torch import Tensor

from ..rendering.ray_generation import SensorView


@dataclass
class CameraVisuals:
    """One camera of the first sample of the step.

    Attributes:
        camera: camera index.
        stride: pixel stride of the rendered preview grid.
        rgb_real, rgb: (h, w, 3) real and rendered colour on the preview grid, in [0, 1].
        range_real, range: (h, w) LiDAR range where a point projects (NaN elsewhere) and rendered range, metres.
        pixel_map: (H, W) pixel selection probabilities of the step (sum 1).
        pixels: (N_C, 2) selected pixel centres (u, v) of the step.
    """
    camera: int
    stride: int
    rgb_real: Tensor
    rgb: Tensor
    range_real: Tensor
    range: Tensor
    pixel_map: Tensor
    pixels: Tensor


@dataclass
class PrototypeVisuals:
    """Hard prototype assignments of the first sample's BEV cells.

    Attributes:
        cells: (2, M) BEV cell indices (ix, iy) of a (X, Y) grid over the point-cloud range.
        grid: (X, Y).
        assignment: (M,) argmax prototype of each cell's LiDAR embedding.
        num_prototypes: N_K.
    """
    cells: Tensor
    grid: Sequence[int]
    assignment: Tensor
    num_prototypes: int


@dataclass
class PretrainVisuals:
    """One step of pre-training, first sample of the batch.

    Attributes:
        point_cloud_range: [x0, y0, z0, x1, y1, z1] metres (the extent of the BEV pictures).
        points: (P, 3) keyframe LiDAR points.
        point_weights: (P,) their selection probabilities.
        point_inds: (N_L,) the selected points.
        camera: the camera panels, or None without camera rays.
        prototypes: the prototype panel, or None without prototype losses.
    """
    point_cloud_range: Sequence[float]
    points: Tensor
    point_weights: Tensor
    point_inds: Tensor
    camera: Optional[CameraVisuals] = None
    prototypes: Optional[PrototypeVisuals] = None


@dataclass
class VisualsRequest:
    """Which preview the visualisation hook asked for: camera ``camera`` on a grid of ``stride`` pixels."""
    camera: int
    stride: int


@dataclass
class StepRecord:
    """What a training step with a pending :class:`VisualsRequest` keeps of its first sample.

    Attributes:
        volume: (C_r, Z, Y, X) detached feature volume.
        view: the sample's sensors and ray selection.
        image: (N_cam, 3, H, W) raw images in [0, 1], or None without cameras.
        proto_cells: (2, M) BEV cells (ix, iy) that entered the prototype losses, or None without them.
        proto_grid: (X, Y) of the BEV grid of ``proto_cells``.
    """
    volume: Tensor
    view: SensorView
    image: Optional[Tensor] = None
    proto_cells: Optional[Tensor] = None
    proto_grid: Optional[Sequence[int]] = None

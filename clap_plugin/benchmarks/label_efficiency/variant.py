"""Model variants of the label-efficiency benchmark: the CPU-tiny configs rewritten to a cheaper input.

A variant keeps BEVFusion's structure, module names and parameter shapes (an encoder export loads into every
variant), and changes only what sets the cost of an iteration: the camera input size, the BEV range (at the same
voxel and BEV cell size, so the grids shrink with it) and the LiDAR sweeps loaded per sample. The same rewrite is
applied to every config of a run (each arm's pre-training and the fine-tune), so that pre-training and
fine-tuning see the same input. The evaluation's class ranges are clipped to the BEV range, so that boxes the
model cannot see are not counted as misses.

Measured side by side in one process on the 80-sample diverse set (``tools/benchmarks/label_efficiency_bench.md``,
"Cost of an iteration"): the images, the range and the sweeps each cut a fine-tune iteration by 1.25-1.33x.
Then 2.4 m BEV cells (cpu-bench -> cpu-fast, one process, compute only): 1.05 s -> 0.61 s, 1.72x
(``docs/benchmarks.md``).
"""
import copy
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config

# what the CPU-tiny configs use (configs/_base_/models/bevfusion_cpu-tiny.py, _base_/datasets/*_tiny.py)
TINY_IMAGE_SIZE = (128, 352)
TINY_HALF_EXTENT = 54.0
SOURCE_SIZE = (1600, 900)  # (W, H) of nuScenes' camera images: what the CPU-tiny augmentation's resize_lim is for
FEATURE_STRIDE = 8  # image features at 1/8 of the input (view_transform.feature_size)


@dataclass(frozen=True)
class ModelVariant:
    """A cheaper input for the CPU-tiny model.

    Args:
        name: the variant's name (``Setting.variant``).
        image_size: (H, W) of the camera input; W a multiple of 32 (the data preprocessor pads to 32).
        half_extent: the BEV range is [-half_extent, half_extent] in x and y (metres), an even number of BEV cells
            (1.2 m x cell_scale).
        sweeps_num: LiDAR sweeps loaded besides the keyframe (None: the config's).
        cell_scale: the voxel's x / y size and the camera BEV step are multiplied by it (1: the config's 0.15 m
            voxels and 1.2 m BEV cells; 2: 0.3 m voxels and 2.4 m cells), so every BEV grid has 1 / cell_scale as
            many cells along x and y.
        source_size: (W, H) at which the run's synthetic set is generated (None: nuScenes' 1600 x 900). The image
            augmentation's ``resize_lim`` is scaled by 1600 / W, so that the crop the model sees covers the same
            field of view; a smaller source only makes generation and decoding cheaper.
    """
    name: str
    image_size: Optional[Tuple[int, int]] = None
    half_extent: Optional[float] = None
    sweeps_num: Optional[int] = None
    cell_scale: int = 1
    source_size: Optional[Tuple[int, int]] = None

    @property
    def identity(self) -> bool:
        return (self.image_size is None and self.half_extent is None and self.sweeps_num is None
                and self.cell_scale == 1 and self.source_size is None)

    @property
    def bev_cell(self) -> float:
        """The BEV cell of the detector's maps, metres."""
        return 1.2 * self.cell_scale

    def validate(self) -> None:
        if self.image_size is not None:
            h, w = self.image_size
            if h % FEATURE_STRIDE or w % 32:
                raise ValueError(f'variant {self.name}: image_size {self.image_size} needs H % 8 == 0 and '
                                 'W % 32 == 0 (the data preprocessor pads to 32)')
        if self.source_size is not None:
            sw, sh = self.source_size
            if abs(sw / sh - SOURCE_SIZE[0] / SOURCE_SIZE[1]) > 0.01:
                raise ValueError(f'variant {self.name}: source_size {self.source_size} must keep the 16:9 aspect of '
                                 f'{SOURCE_SIZE} (the rig scales its intrinsics by the width)')
        if int(self.cell_scale) != self.cell_scale or self.cell_scale < 1:
            raise ValueError(f'variant {self.name}: cell_scale must be a positive integer, got {self.cell_scale}')
        extent = TINY_HALF_EXTENT if self.half_extent is None else self.half_extent
        cells = 2 * extent / self.bev_cell
        if abs(cells - round(cells)) > 1e-6 or round(cells) % 2:
            raise ValueError(f'variant {self.name}: half_extent {extent} must make an even number of '
                             f'{self.bev_cell:g} m BEV cells')


VARIANTS: Dict[str, ModelVariant] = {v.name: v for v in (
    ModelVariant('cpu-tiny'),
    # 64 x 192 images, +-32.4 m (54 x 54 BEV cells of 1.2 m), the keyframe's points only
    ModelVariant('cpu-bench', image_size=(64, 192), half_extent=32.4, sweeps_num=0),
    # cpu-bench with 0.3 m voxels and 2.4 m BEV cells over +-33.6 m (28 x 28 cells): the BEV half of the model
    # (sparse encoder, fuser, SECOND, FPN, head) costs about a quarter as much; the set generated at 400 x 225
    ModelVariant('cpu-fast', image_size=(64, 192), half_extent=33.6, sweeps_num=0, cell_scale=2,
                 source_size=(400, 225)),
)}


def get_variant(name: str) -> ModelVariant:
    if name not in VARIANTS:
        raise ValueError(f'unknown model variant {name!r}; known: {list(VARIANTS)}')
    return VARIANTS[name]


def _scaled_range(values: List[float], scale: float) -> List[float]:
    """A range written as [x0, y0, (z0,) x1, y1, (z1)]: x and y scaled, z kept."""
    v = [float(x) for x in values]
    if len(v) == 6:
        return [v[0] * scale, v[1] * scale, v[2], v[3] * scale, v[4] * scale, v[5]]
    return [x * scale for x in v]


def _coarser(key: str, value: Any, k: int) -> Any:
    """A voxel size, grid or BEV bound for cells ``k`` times as large along x and y."""
    if not isinstance(value, list):
        return value
    if key == 'voxel_size' and len(value) in (2, 3):
        return [value[0] * k, value[1] * k] + list(value[2:])
    if key in ('sparse_shape', 'grid_size') and len(value) == 3:
        if value[0] % k or value[1] % k:
            raise ValueError(f'{key} {value} cannot be divided by cell_scale {k}')
        return [value[0] // k, value[1] // k, value[2]]
    if key in ('xbound', 'ybound') and len(value) == 3:
        return [value[0], value[1], value[2] * k]
    return value


def _rewrite(node: Any, variant: ModelVariant, scale: float, img_scale: Tuple[float, float]) -> Any:
    """Rewrite one config node (dicts and lists recursively) for the variant."""
    if isinstance(node, list):
        return [_rewrite(v, variant, scale, img_scale) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        value = _rewrite(value, variant, scale, img_scale)
        if variant.cell_scale != 1:
            value = _coarser(key, value, int(variant.cell_scale))
        if variant.half_extent is not None and scale != 1.0:
            if key in ('point_cloud_range', 'pc_range', 'post_center_range') and isinstance(value, list):
                value = _scaled_range(value, scale)
            elif key in ('xbound', 'ybound') and isinstance(value, list) and len(value) == 3:
                value = [value[0] * scale, value[1] * scale, value[2]]
            elif key in ('sparse_shape', 'grid_size') and isinstance(value, list) and len(value) == 3:
                value = [int(round(value[0] * scale)), int(round(value[1] * scale)), value[2]]
        if variant.image_size is not None:
            if key in ('image_size', 'final_dim') and isinstance(value, list) and len(value) == 2:
                value = list(variant.image_size)
            elif key == 'feature_size' and isinstance(value, list) and len(value) == 2:
                value = [variant.image_size[0] // FEATURE_STRIDE, variant.image_size[1] // FEATURE_STRIDE]
        if (variant.image_size is not None or variant.source_size is not None) and key == 'resize_lim' \
                and node.get('type') == 'CLAPImageAug3D' and isinstance(value, list):
            value = [float(v) * img_scale[1] for v in value]
        if variant.sweeps_num is not None and key == 'sweeps_num' and node.get('type', '').endswith('Sweeps'):
            value = int(variant.sweeps_num)
        out[key] = value
    return out


def apply_variant(cfg: Config, variant: ModelVariant) -> Config:
    """A copy of ``cfg`` rewritten for the variant: every ``point_cloud_range`` / ``pc_range`` /
    ``post_center_range`` / BEV bound scaled to the variant's extent and every ``sparse_shape`` / ``grid_size``
    with it; every camera ``image_size`` / ``final_dim`` / ``feature_size`` set and the image augmentation's
    ``resize_lim`` scaled with the width; ``sweeps_num`` of the sweep loaders set; the evaluator's class ranges
    clipped to the extent (``max_range`` of ``CLAPNuScenesMetric``); with ``cell_scale`` every voxel size, sparse
    shape / grid size and camera BEV step made coarser. Parameter shapes do not change."""
    variant.validate()
    if variant.identity:
        return copy.deepcopy(cfg)
    scale = 1.0 if variant.half_extent is None else float(variant.half_extent) / TINY_HALF_EXTENT
    img_scale = (1.0, 1.0) if variant.image_size is None else (
        variant.image_size[0] / TINY_IMAGE_SIZE[0], variant.image_size[1] / TINY_IMAGE_SIZE[1])
    if variant.source_size is not None:  # a smaller source image is resized less to the same crop
        source = SOURCE_SIZE[0] / variant.source_size[0]
        img_scale = (img_scale[0] * source, img_scale[1] * source)
    data = _rewrite(cfg.to_dict(), variant, scale, img_scale)
    for name in ('val_evaluator', 'test_evaluator'):
        ev = data.get(name)
        if variant.half_extent is not None and isinstance(ev, dict) and ev.get('type') == 'CLAPNuScenesMetric':
            ev['max_range'] = float(variant.half_extent)
    return Config(data, filename=cfg.filename)


def write_variant_config(source: str, variant: ModelVariant, out: str,
                         options: Optional[Dict[str, Any]] = None) -> str:
    """Read the config ``source``, merge ``options`` (``--cfg-options`` style keys), apply the variant and dump
    the result to ``out`` (atomically). Returns ``out``."""
    from clap_plugin.utils.atomic_write import write_text_atomic
    cfg = Config.fromfile(source)
    if options:
        cfg.merge_from_dict(dict(options))
    # what Config.dump writes for a .py file, through a temporary name of this writer's own (two jobs starting
    # together may write the same config)
    write_text_atomic(out, apply_variant(cfg, variant).pretty_text)
    return out

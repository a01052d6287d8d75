"""Write a synthetic nuScenes tree: 13 tables, ``samples/``, ``sweeps/``, ``maps/``.

The tree is built in a temporary sibling folder and renamed into place when complete, so an interrupted run
leaves nothing half-written at ``root``.
"""
import os
import shutil
import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

import cv2
import numpy as np
import torch

from .nuscenes_tables import NuScenesTables, TokenFactory
from .rig import CAMERA_NAMES, LIDAR_NAME, LidarPattern, build_rig, camera_pixel_rays
from .scene_writer import SceneWriter

# Official split scene names (nuscenes-devkit's ``create_splits_scenes``), val scenes interleaved so that a
# small set gets both training and validation scenes.
MINI_SCENES = ('scene-0061', 'scene-0103', 'scene-0553', 'scene-0655', 'scene-0757', 'scene-0796', 'scene-0916',
               'scene-1077', 'scene-1094', 'scene-1100')
LOCATIONS = ('singapore-onenorth', 'boston-seaport', 'singapore-queenstown', 'singapore-hollandvillage')
SUPPORTED_VERSIONS = ('v1.0-mini', 'v1.0-trainval')


class SyntheticDataError(ValueError):
    """Bad generator arguments."""


def _split_pools(version: str) -> Tuple[List[str], List[str]]:
    """The official (train, val) scene names of ``version``."""
    from nuscenes.utils import splits
    if version == 'v1.0-mini':
        return list(splits.mini_train), list(splits.mini_val)
    if version == 'v1.0-trainval':
        return list(splits.train), list(splits.val)
    raise SyntheticDataError(f'unknown version {version!r}; supported: {", ".join(SUPPORTED_VERSIONS)}')


def _alternate(first: List[str], second: List[str]) -> List[str]:
    """first[0], second[0], first[1], second[1], ...; the longer list's rest at the end."""
    out = []
    for i in range(max(len(first), len(second))):
        out += first[i:i + 1] + second[i:i + 1]
    return out


def scene_names(version: str, num_scenes: int, val_scenes: Optional[int] = None) -> List[str]:
    """The first ``num_scenes`` names for ``version``, alternating train and val scenes of the official split.

    With ``val_scenes`` set, exactly that many of them are val scenes and the others train scenes (still
    alternating while both last), so that the train split can grow without growing the val split.
    """
    if version not in SUPPORTED_VERSIONS:
        raise SyntheticDataError(f'unknown version {version!r}; supported: {", ".join(SUPPORTED_VERSIONS)}')
    if val_scenes is not None:
        train, val = _split_pools(version)
        if num_scenes < 1:
            raise SyntheticDataError(f'--scenes must be >= 1, got {num_scenes}')
        if not 0 <= val_scenes <= num_scenes:
            raise SyntheticDataError(f'--val-scenes must be in [0, --scenes = {num_scenes}], got {val_scenes}')
        n_train = num_scenes - val_scenes
        if n_train > len(train) or val_scenes > len(val):
            raise SyntheticDataError(f'{version} has {len(train)} train and {len(val)} val scenes; asked for '
                                     f'{n_train} train (--scenes - --val-scenes) and {val_scenes} val (--val-scenes)')
        return _alternate(train[:n_train], val[:val_scenes])
    if version == 'v1.0-mini':
        names = list(MINI_SCENES)
    else:
        train, val = _split_pools(version)
        names = _alternate(train, val)
    if not 1 <= num_scenes <= len(names):
        raise SyntheticDataError(f'--scenes must be in [1, {len(names)}] for {version}, got {num_scenes}')
    return names[:num_scenes]


@dataclass
class GeneratorConfig:
    root: str
    version: str = 'v1.0-mini'
    num_scenes: int = 2
    samples_per_scene: int = 6
    seed: int = 0
    sweeps: int = 2  # non-keyframe LiDAR sweeps before each keyframe
    image_size: Tuple[int, int] = (1600, 900)
    objects_per_class: Tuple[int, int] = (1, 2)
    val_scenes: Optional[int] = None  # how many of the scenes are val scenes (None: every other one)
    save_gt_maps: bool = False  # also write per-pixel/per-point object ids and depths (for tests)
    overwrite: bool = False

    def validate(self) -> None:
        if self.version not in SUPPORTED_VERSIONS:
            raise SyntheticDataError(f'unknown version {self.version!r}; supported: {", ".join(SUPPORTED_VERSIONS)}')
        scene_names(self.version, self.num_scenes, self.val_scenes)
        if self.samples_per_scene < 2:
            raise SyntheticDataError(f'--samples-per-scene must be >= 2 (velocities need two keyframes), '
                                     f'got {self.samples_per_scene}')
        if not 0 <= self.sweeps <= 9:
            raise SyntheticDataError(f'--sweeps must be in [0, 9], got {self.sweeps}')
        w, h = self.image_size
        if w < 16 or h < 16:
            raise SyntheticDataError(f'--image-size too small: {w}x{h}')
        lo, hi = self.objects_per_class
        if not 0 <= lo <= hi:
            raise SyntheticDataError(f'--objects-per-class must be 0 <= min <= max, got {lo} {hi}')
        if os.path.exists(self.root) and os.listdir(self.root) and not self.overwrite:
            raise SyntheticDataError(f'output root {self.root!r} exists and is not empty (pass --overwrite)')


def _write_map_mask(path: str) -> None:
    """A small semantic-prior mask (drivable band) so that the ``map`` table points at a real file."""
    mask = np.zeros((200, 200), np.uint8)
    mask[80:120, :] = 255
    if not cv2.imwrite(path, mask):
        raise OSError(f'could not write map mask {path}')


class SyntheticNuScenesGenerator:
    """Generates the dataset described by a :class:`GeneratorConfig`."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.rig = build_rig(cfg.image_size)
        self.pattern = LidarPattern()
        self.pixel_rays = {name: camera_pixel_rays(self.rig[name].intrinsic, *cfg.image_size)
                           for name in CAMERA_NAMES}

    def run(self, progress: bool = True) -> str:
        cfg = self.cfg
        root = os.path.abspath(cfg.root)
        parent = os.path.dirname(root)
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f'.{os.path.basename(root)}.tmp-{os.getpid()}')
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        try:
            self._generate(tmp, progress)
            if os.path.exists(root):
                trash = f'{tmp}.old'
                os.replace(root, trash)
                os.replace(tmp, root)
                shutil.rmtree(trash)
            else:
                os.replace(tmp, root)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return root

    # ------------------------------------------------------------------
    def _generate(self, out: str, progress: bool) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        tables = NuScenesTables(TokenFactory(cfg.seed))
        for sub in ['maps'] + [f'samples/{c}' for c in (LIDAR_NAME,) + CAMERA_NAMES] + [f'sweeps/{LIDAR_NAME}']:
            os.makedirs(os.path.join(out, sub), exist_ok=True)
        if cfg.save_gt_maps:
            os.makedirs(os.path.join(out, 'synthetic_gt'), exist_ok=True)
        for name, calib in self.rig.items():
            tables.add_sensor(name, calib.modality)
        names = scene_names(cfg.version, cfg.num_scenes, cfg.val_scenes)
        map_tokens = {}
        total_steps = cfg.num_scenes * cfg.samples_per_scene
        bar = None
        if progress:
            from mmengine.utils import ProgressBar
            bar = ProgressBar(total_steps)
        for i, name in enumerate(names):
            location = LOCATIONS[i % len(LOCATIONS)]
            SceneWriter(cfg, self.rig, self.pattern, self.pixel_rays, out, tables, i).write(name, location, bar)
            if location not in map_tokens:
                map_tokens[location] = tables.token()
        # the map table: one semantic prior per location, listing its logs
        for location, tok in map_tokens.items():
            fname = f'maps/{tok}.png'
            _write_map_mask(os.path.join(out, fname))
            logs = [lg['token'] for lg in tables.tables['log'] if lg['location'] == location]
            tables.add('map', token=tok, log_tokens=logs, category='semantic_prior', filename=fname)
        tables.write(os.path.join(out, cfg.version))


def generate(cfg: GeneratorConfig, progress: bool = True) -> Tuple[str, float]:
    """Generate the dataset; returns its root and the seconds it took."""
    start = time.time()
    root = SyntheticNuScenesGenerator(cfg).run(progress=progress)
    return root, time.time() - start

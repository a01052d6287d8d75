"""Write a synthetic nuScenes tree: 13 tables, ``samples/``, ``sweeps/``, ``maps/``.

The tree is built in a temporary sibling folder and renamed into place when complete, so an interrupted run
leaves nothing half-written at ``root``.
"""
import os
import shutil
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch

from .nuscenes_tables import NuScenesTables, TokenFactory, quaternion_list, vector_list, visibility_token
from .render import CameraFrame, ego_to_global, render_camera, render_lidar
from .rig import CAMERA_NAMES, LIDAR_NAME, LidarPattern, build_rig, camera_pixel_rays, yaw_quaternion
from .scene import (
    MAT_BARRIER,
    MAT_BUILDING,
    MAT_CONE,
    MAT_CYCLE,
    MAT_GROUND,
    MAT_PERSON,
    MAT_POLE,
    MAT_VEHICLE,
    Scene,
    SceneConfig,
    SceneObject,
    build_scene,
)

# Official split scene names (nuscenes-devkit's ``create_splits_scenes``), val scenes interleaved so that a
# small set gets both training and validation scenes.
MINI_SCENES = ('scene-0061', 'scene-0103', 'scene-0553', 'scene-0655', 'scene-0757', 'scene-0796', 'scene-0916',
               'scene-1077', 'scene-1094', 'scene-1100')
LOCATIONS = ('singapore-onenorth', 'boston-seaport', 'singapore-queenstown', 'singapore-hollandvillage')
SUPPORTED_VERSIONS = ('v1.0-mini', 'v1.0-trainval')
KEYFRAME_INTERVAL = 0.5  # seconds (2 Hz)
SWEEP_INTERVAL = 0.05  # seconds (20 Hz LiDAR)
BASE_TIMESTAMP_US = 1_532_402_927_000_000


# Per-pixel semantic classes written (as ``semantic``, uint8) beside ``object_id`` in the camera ground-truth maps
# of ``save_gt_maps``: the sky, then one class per surface material (the ground and each kind of primitive).
SEMANTIC_CLASSES = ('sky', 'ground', 'building', 'vehicle', 'person', 'traffic_cone', 'barrier', 'pole', 'cycle')
_MATERIAL_SEMANTIC = {MAT_GROUND: 1, MAT_BUILDING: 2, MAT_VEHICLE: 3, MAT_PERSON: 4, MAT_CONE: 5, MAT_BARRIER: 6,
                      MAT_POLE: 7, MAT_CYCLE: 8}


def semantic_map(scene: Scene, object_id: np.ndarray) -> np.ndarray:
    """(H, W) uint8 index into :data:`SEMANTIC_CLASSES` of an ``object_id`` map (-1 sky, 0 ground)."""
    lut = np.zeros(max([o.object_id for o in scene.objects], default=0) + 2, np.uint8)  # entry 0: sky (id -1)
    lut[1] = _MATERIAL_SEMANTIC[MAT_GROUND]
    for o in scene.objects:
        lut[o.object_id + 1] = _MATERIAL_SEMANTIC[o.material]
    return lut[object_id + 1]


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


def points_in_annotation(points_global: np.ndarray, center: np.ndarray, wlh: np.ndarray, yaw: float) -> np.ndarray:
    """Mask (N,) of points (N, 3) inside a yaw-rotated box, boundaries included (the devkit's convention)."""
    c, s = np.cos(yaw), np.sin(yaw)
    d = points_global - center
    x = c * d[:, 0] + s * d[:, 1]
    y = -s * d[:, 0] + c * d[:, 1]
    w, l, h = wlh
    return (np.abs(x) <= l / 2) & (np.abs(y) <= w / 2) & (np.abs(d[:, 2]) <= h / 2)


def _surface_samples(obj: SceneObject, t: float, per_axis: int = 5) -> np.ndarray:
    """Points on the faces of the object's geometry (M, 3) in the global frame, for visibility."""
    g = np.linspace(-0.45, 0.45, per_axis)
    pts = []
    for axis in range(3):
        for sign in (-0.5, 0.5):
            a, b = [i for i in range(3) if i != axis]
            u, v = np.meshgrid(g, g, indexing='ij')
            p = np.zeros((u.size, 3))
            p[:, axis] = sign
            p[:, a] = u.ravel()
            p[:, b] = v.ravel()
            pts.append(p)
    local = np.concatenate(pts) * obj.size
    c, s = np.cos(obj.yaw), np.sin(obj.yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    return local @ rot.T + obj.center_at(t)


def visible_fraction(obj: SceneObject, frames: Dict[str, Tuple[CameraFrame, np.ndarray, np.ndarray, float]]) -> float:
    """Share of the object's surface samples whose pixel, in some camera, shows the object itself."""
    seen = None
    for frame, global2cam, intrinsic, t_cam in frames.values():
        pts = _surface_samples(obj, t_cam)
        cam = pts @ global2cam[:3, :3].T + global2cam[:3, 3]
        front = cam[:, 2] > 0.1
        uvw = cam @ intrinsic.T
        uv = np.floor(uvw[:, :2] / np.where(front, uvw[:, 2], 1.0)[:, None]).astype(np.int64)
        h, w = frame.object_id.shape
        inside = front & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        hit = np.zeros(len(pts), bool)
        hit[inside] = frame.object_id[uv[inside, 1], uv[inside, 0]] == obj.object_id
        seen = hit if seen is None else (seen | hit)
    return float(seen.mean()) if seen is not None else 0.0


def _write_jpeg(path: str, image_rgb: np.ndarray) -> None:
    ok = cv2.imwrite(path, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise OSError(f'could not write image {path}')


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
            self._scene(out, tables, i, name, location, bar)
            if location not in map_tokens:
                map_tokens[location] = tables.token()
        # the map table: one semantic prior per location, listing its logs
        for location, tok in map_tokens.items():
            fname = f'maps/{tok}.png'
            _write_map_mask(os.path.join(out, fname))
            logs = [lg['token'] for lg in tables.tables['log'] if lg['location'] == location]
            tables.add('map', token=tok, log_tokens=logs, category='semantic_prior', filename=fname)
        tables.write(os.path.join(out, cfg.version))

    def _scene(self, out: str, tables: NuScenesTables, index: int, name: str, location: str, bar) -> None:
        cfg = self.cfg
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, index]))
        duration = (cfg.samples_per_scene - 1) * KEYFRAME_INTERVAL
        scene = build_scene(rng, SceneConfig(duration=duration, objects_per_class=cfg.objects_per_class),
                            origin=np.array([600.0 * index, 350.0 * (index % 3), 0.0]),
                            heading=float(rng.uniform(-np.pi, np.pi)), t0=0.0)
        base_us = BASE_TIMESTAMP_US + index * 3_600_000_000
        log_name = f'n015-2018-07-{11 + index % 18:02d}-11-{index % 60:02d}-00+0800'
        log_tok = tables.add('log', logfile=log_name, vehicle='n015', date_captured='2018-07-%02d' % (11 + index % 18),
                             location=location)
        calib_tok = {}
        for ch, calib in self.rig.items():
            calib_tok[ch] = tables.add('calibrated_sensor', sensor_token=tables.sensor_token[ch],
                                       translation=vector_list(calib.translation),
                                       rotation=quaternion_list(calib.rotation),
                                       camera_intrinsic=[vector_list(r) for r in calib.intrinsic]
                                       if calib.modality == 'camera' else [])

        def us(t: float) -> int:
            return base_us + int(round(t * 1e6))

        def ego_pose(t: float) -> str:
            trans, yaw = scene.ego_pose(t)
            return tables.add('ego_pose', timestamp=us(t), rotation=quaternion_list(yaw_quaternion(yaw)),
                              translation=vector_list(trans))

        samples, lidar_chain = [], []
        cam_chain: Dict[str, List[dict]] = {c: [] for c in CAMERA_NAMES}
        ann_by_object: Dict[int, List[dict]] = {o.object_id: [] for o in scene.objects if o.annotated}
        for k in range(cfg.samples_per_scene):
            t_key = k * KEYFRAME_INTERVAL
            sample_tok = tables.token()
            samples.append(dict(token=sample_tok, timestamp=us(t_key), scene_token=None))
            # LiDAR sweeps before the keyframe, then the keyframe itself
            for j in range(cfg.sweeps, -1, -1):
                t = t_key - j * SWEEP_INTERVAL
                sweep = render_lidar(scene, self.rig[LIDAR_NAME], self.pattern, t, rng)
                folder = 'samples' if j == 0 else 'sweeps'
                fname = f'{folder}/{LIDAR_NAME}/{log_name}__{LIDAR_NAME}__{us(t)}.pcd.bin'
                sweep.points.tofile(os.path.join(out, fname))
                rec = dict(token=tables.token(), sample_token=sample_tok, ego_pose_token=ego_pose(t),
                           calibrated_sensor_token=calib_tok[LIDAR_NAME], timestamp=us(t), fileformat='pcd',
                           is_key_frame=j == 0, height=0, width=0, filename=fname)
                lidar_chain.append(rec)
                if cfg.save_gt_maps:
                    np.savez_compressed(os.path.join(out, 'synthetic_gt', rec['token'] + '.npz'),
                                        object_id=sweep.object_id)
                if j == 0:
                    key_sweep = sweep
            # cameras at their capture times
            frames = {}
            for cam in CAMERA_NAMES:
                calib = self.rig[cam]
                t = t_key + calib.time_offset_us * 1e-6
                frame = render_camera(scene, calib, t, *cfg.image_size, pixel_rays=self.pixel_rays[cam])
                fname = f'samples/{cam}/{log_name}__{cam}__{us(t)}.jpg'
                _write_jpeg(os.path.join(out, fname), frame.image)
                rec = dict(token=tables.token(), sample_token=sample_tok, ego_pose_token=ego_pose(t),
                           calibrated_sensor_token=calib_tok[cam], timestamp=us(t), fileformat='jpg',
                           is_key_frame=True, height=cfg.image_size[1], width=cfg.image_size[0], filename=fname)
                cam_chain[cam].append(rec)
                if cfg.save_gt_maps:
                    np.savez_compressed(os.path.join(out, 'synthetic_gt', rec['token'] + '.npz'),
                                        object_id=frame.object_id, depth=frame.depth.astype(np.float32),
                                        semantic=semantic_map(scene, frame.object_id))
                cam2global = ego_to_global(scene, t) @ calib.sensor_to_ego()
                frames[cam] = (frame, np.linalg.inv(cam2global), calib.intrinsic, t)
            # annotations at the keyframe time
            lidar2global = ego_to_global(scene, t_key) @ self.rig[LIDAR_NAME].sensor_to_ego()
            pts_g = key_sweep.points[:, :3].astype(np.float64) @ lidar2global[:3, :3].T + lidar2global[:3, 3]
            for obj in scene.objects:
                if not obj.annotated:
                    continue
                center, wlh, yaw = obj.annotation_box(t_key)
                n_pts = int(points_in_annotation(pts_g, center, wlh, yaw).sum())
                ann_by_object[obj.object_id].append(dict(
                    token=tables.token(), sample_token=sample_tok, instance_token=None,
                    visibility_token=visibility_token(visible_fraction(obj, frames)),
                    attribute_tokens=[tables.attribute_token[obj.attribute]] if obj.attribute else [],
                    translation=vector_list(center), size=vector_list(wlh),
                    rotation=quaternion_list(yaw_quaternion(yaw)), num_lidar_pts=n_pts, num_radar_pts=0))
            if bar is not None:
                bar.update()

        scene_tok = tables.token()
        for s in samples:
            s['scene_token'] = scene_tok
        NuScenesTables.link(samples)
        NuScenesTables.link(lidar_chain)
        for chain in cam_chain.values():
            NuScenesTables.link(chain)
        tables.tables['sample'].extend(samples)
        tables.tables['sample_data'].extend(lidar_chain)
        for chain in cam_chain.values():
            tables.tables['sample_data'].extend(chain)
        for obj in scene.objects:
            if not obj.annotated:
                continue
            anns = ann_by_object[obj.object_id]
            inst_tok = tables.token()
            for a in anns:
                a['instance_token'] = inst_tok
            NuScenesTables.link(anns)
            tables.tables['sample_annotation'].extend(anns)
            tables.add('instance', token=inst_tok, category_token=tables.category_token[obj.category],
                       nbr_annotations=len(anns), first_annotation_token=anns[0]['token'],
                       last_annotation_token=anns[-1]['token'])
        tables.add('scene', token=scene_tok, log_token=log_tok, nbr_samples=len(samples),
                   first_sample_token=samples[0]['token'], last_sample_token=samples[-1]['token'], name=name,
                   description=f'Synthetic street scene {index} (seed {cfg.seed}), {location}.')


def generate(cfg: GeneratorConfig, progress: bool = True) -> Tuple[str, float]:
    """Generate the dataset; returns its root and the seconds it took."""
    start = time.time()
    root = SyntheticNuScenesGenerator(cfg).run(progress=progress)
    return root, time.time() - start

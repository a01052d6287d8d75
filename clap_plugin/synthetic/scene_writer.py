"""One synthetic scene on disk: its log, calibrations, LiDAR sweeps, camera images, annotations and the table
records that link them (nuScenes' ``scene`` / ``sample`` / ``sample_data`` / ``sample_annotation`` chains).

Every token and every random draw is taken in a fixed order, so a seed gives the same files byte for byte.
"""
import os
from typing import Dict, List, Tuple

import cv2
import numpy as np

from .nuscenes_tables import NuScenesTables, quaternion_list, vector_list, visibility_token
from .render import CameraFrame, ego_to_global, render_camera, render_lidar
from .rig import CAMERA_NAMES, LIDAR_NAME, LidarPattern, SensorCalibration, yaw_quaternion
from .scene import MATERIALS, Scene, SceneConfig, SceneObject, build_scene

KEYFRAME_INTERVAL = 0.5  # seconds (2 Hz)
SWEEP_INTERVAL = 0.05  # seconds (20 Hz LiDAR)
BASE_TIMESTAMP_US = 1_532_402_927_000_000

# Per-pixel semantic classes written (as ``semantic``, uint8) beside ``object_id`` in the camera ground-truth maps
# of ``save_gt_maps``: the sky, then one class per surface material (the ground and each kind of primitive), in
# the order of the material ids.
SEMANTIC_CLASSES = ('sky', ) + MATERIALS

# camera frame, global -> camera, intrinsic (3, 3), capture time, per camera
CameraViews = Dict[str, Tuple[CameraFrame, np.ndarray, np.ndarray, float]]


def semantic_map(scene: Scene, object_id: np.ndarray) -> np.ndarray:
    """(H, W) uint8 index into :data:`SEMANTIC_CLASSES` of an ``object_id`` map (-1 sky, 0 ground)."""
    lut = np.zeros(max([o.object_id for o in scene.objects], default=0) + 2, np.uint8)  # entry 0: sky (id -1)
    lut[1] = SEMANTIC_CLASSES.index('ground')
    for o in scene.objects:
        lut[o.object_id + 1] = o.material + 1
    return lut[object_id + 1]


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


def visible_fraction(obj: SceneObject, frames: CameraViews) -> float:
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


def write_jpeg(path: str, image_rgb: np.ndarray) -> None:
    ok = cv2.imwrite(path, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise OSError(f'could not write image {path}')


class SceneWriter:
    """Writes scene ``index`` of a synthetic set under ``out`` and adds its records to ``tables``.

    Args:
        cfg: the generator's config (``seed``, ``samples_per_scene``, ``sweeps``, ``image_size``,
            ``objects_per_class``, ``save_gt_maps``).
        rig: channel -> :class:`SensorCalibration`; ``pattern``: the LiDAR's beam pattern; ``pixel_rays``:
            camera -> its per-pixel ray directions.
    """

    def __init__(self, cfg, rig: Dict[str, SensorCalibration], pattern: LidarPattern,
                 pixel_rays: Dict[str, np.ndarray], out: str, tables: NuScenesTables, index: int) -> None:
        self.cfg, self.rig, self.pattern, self.pixel_rays = cfg, rig, pattern, pixel_rays
        self.out, self.tables, self.index = out, tables, index
        self.rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, index]))
        duration = (cfg.samples_per_scene - 1) * KEYFRAME_INTERVAL
        self.scene = build_scene(self.rng, SceneConfig(duration=duration, objects_per_class=cfg.objects_per_class),
                                 origin=np.array([600.0 * index, 350.0 * (index % 3), 0.0]),
                                 heading=float(self.rng.uniform(-np.pi, np.pi)), t0=0.0)
        self.base_us = BASE_TIMESTAMP_US + index * 3_600_000_000
        self.log_name = f'n015-2018-07-{11 + index % 18:02d}-11-{index % 60:02d}-00+0800'
        self.calib_tok: Dict[str, str] = {}
        self.samples: List[dict] = []
        self.lidar_chain: List[dict] = []
        self.cam_chain: Dict[str, List[dict]] = {c: [] for c in CAMERA_NAMES}
        self.ann_by_object: Dict[int, List[dict]] = {o.object_id: [] for o in self.scene.objects if o.annotated}

    def write(self, name: str, location: str, bar=None) -> None:
        """The log, the calibrations, every keyframe with its sweeps and images, then the scene's records."""
        log_tok = self._add_log_and_calibrations(location)
        for k in range(self.cfg.samples_per_scene):
            self._write_keyframe(k * KEYFRAME_INTERVAL)
            if bar is not None:
                bar.update()
        self._add_scene_records(log_tok, name, location)

    # ------------------------------------------------------------------ records
    def _us(self, t: float) -> int:
        return self.base_us + int(round(t * 1e6))

    def _ego_pose(self, t: float) -> str:
        trans, yaw = self.scene.ego_pose(t)
        return self.tables.add('ego_pose', timestamp=self._us(t), rotation=quaternion_list(yaw_quaternion(yaw)),
                               translation=vector_list(trans))

    def _add_log_and_calibrations(self, location: str) -> str:
        tables, index = self.tables, self.index
        log_tok = tables.add('log', logfile=self.log_name, vehicle='n015',
                             date_captured='2018-07-%02d' % (11 + index % 18), location=location)
        for ch, calib in self.rig.items():
            self.calib_tok[ch] = tables.add('calibrated_sensor', sensor_token=tables.sensor_token[ch],
                                            translation=vector_list(calib.translation),
                                            rotation=quaternion_list(calib.rotation),
                                            camera_intrinsic=[vector_list(r) for r in calib.intrinsic]
                                            if calib.modality == 'camera' else [])
        return log_tok

    def _save_gt(self, token: str, **maps: np.ndarray) -> None:
        if self.cfg.save_gt_maps:
            np.savez_compressed(os.path.join(self.out, 'synthetic_gt', token + '.npz'), **maps)

    # ------------------------------------------------------------------ one keyframe
    def _write_keyframe(self, t_key: float) -> None:
        sample_tok = self.tables.token()
        self.samples.append(dict(token=sample_tok, timestamp=self._us(t_key), scene_token=None))
        key_sweep = self._write_sweeps(sample_tok, t_key)
        frames = self._write_cameras(sample_tok, t_key)
        self._annotate(sample_tok, t_key, key_sweep.points, frames)

    def _write_sweeps(self, sample_tok: str, t_key: float):
        """The LiDAR sweeps before the keyframe, then the keyframe's; returns the keyframe's sweep."""
        cfg, tables = self.cfg, self.tables
        key_sweep = None
        for j in range(cfg.sweeps, -1, -1):
            t = t_key - j * SWEEP_INTERVAL
            sweep = render_lidar(self.scene, self.rig[LIDAR_NAME], self.pattern, t, self.rng)
            folder = 'samples' if j == 0 else 'sweeps'
            fname = f'{folder}/{LIDAR_NAME}/{self.log_name}__{LIDAR_NAME}__{self._us(t)}.pcd.bin'
            sweep.points.tofile(os.path.join(self.out, fname))
            rec = dict(token=tables.token(), sample_token=sample_tok, ego_pose_token=self._ego_pose(t),
                       calibrated_sensor_token=self.calib_tok[LIDAR_NAME], timestamp=self._us(t), fileformat='pcd',
                       is_key_frame=j == 0, height=0, width=0, filename=fname)
            self.lidar_chain.append(rec)
            self._save_gt(rec['token'], object_id=sweep.object_id)
            if j == 0:
                key_sweep = sweep
        return key_sweep

    def _write_cameras(self, sample_tok: str, t_key: float) -> CameraViews:
        """Every camera's image at its capture time; returns what :func:`visible_fraction` needs of them."""
        cfg, tables, scene = self.cfg, self.tables, self.scene
        frames = {}
        for cam in CAMERA_NAMES:
            calib = self.rig[cam]
            t = t_key + calib.time_offset_us * 1e-6
            frame = render_camera(scene, calib, t, *cfg.image_size, pixel_rays=self.pixel_rays[cam])
            fname = f'samples/{cam}/{self.log_name}__{cam}__{self._us(t)}.jpg'
            write_jpeg(os.path.join(self.out, fname), frame.image)
            rec = dict(token=tables.token(), sample_token=sample_tok, ego_pose_token=self._ego_pose(t),
                       calibrated_sensor_token=self.calib_tok[cam], timestamp=self._us(t), fileformat='jpg',
                       is_key_frame=True, height=cfg.image_size[1], width=cfg.image_size[0], filename=fname)
            self.cam_chain[cam].append(rec)
            if cfg.save_gt_maps:
                self._save_gt(rec['token'], object_id=frame.object_id, depth=frame.depth.astype(np.float32),
                              semantic=semantic_map(scene, frame.object_id))
            cam2global = ego_to_global(scene, t) @ calib.sensor_to_ego()
            frames[cam] = (frame, np.linalg.inv(cam2global), calib.intrinsic, t)
        return frames

    def _annotate(self, sample_tok: str, t_key: float, key_points: np.ndarray, frames: CameraViews) -> None:
        """The annotations of every annotated object at the keyframe time (LiDAR points inside, visibility)."""
        lidar2global = ego_to_global(self.scene, t_key) @ self.rig[LIDAR_NAME].sensor_to_ego()
        pts_g = key_points[:, :3].astype(np.float64) @ lidar2global[:3, :3].T + lidar2global[:3, 3]
        tables = self.tables
        for obj in self.scene.objects:
            if not obj.annotated:
                continue
            center, wlh, yaw = obj.annotation_box(t_key)
            n_pts = int(points_in_annotation(pts_g, center, wlh, yaw).sum())
            self.ann_by_object[obj.object_id].append(dict(
                token=tables.token(), sample_token=sample_tok, instance_token=None,
                visibility_token=visibility_token(visible_fraction(obj, frames)),
                attribute_tokens=[tables.attribute_token[obj.attribute]] if obj.attribute else [],
                translation=vector_list(center), size=vector_list(wlh),
                rotation=quaternion_list(yaw_quaternion(yaw)), num_lidar_pts=n_pts, num_radar_pts=0))

    # ------------------------------------------------------------------ the scene's records
    def _add_scene_records(self, log_tok: str, name: str, location: str) -> None:
        """Link the chains, add samples, sample data, instances with their annotations, and the scene."""
        tables = self.tables
        scene_tok = tables.token()
        for s in self.samples:
            s['scene_token'] = scene_tok
        NuScenesTables.link(self.samples)
        NuScenesTables.link(self.lidar_chain)
        for chain in self.cam_chain.values():
            NuScenesTables.link(chain)
        tables.tables['sample'].extend(self.samples)
        tables.tables['sample_data'].extend(self.lidar_chain)
        for chain in self.cam_chain.values():
            tables.tables['sample_data'].extend(chain)
        for obj in self.scene.objects:
            if obj.annotated:
                self._add_instance(obj)
        tables.add('scene', token=scene_tok, log_token=log_tok, nbr_samples=len(self.samples),
                   first_sample_token=self.samples[0]['token'], last_sample_token=self.samples[-1]['token'],
                   name=name, description=f'Synthetic street scene {self.index} (seed {self.cfg.seed}), {location}.')

    def _add_instance(self, obj: SceneObject) -> None:
        tables = self.tables
        anns = self.ann_by_object[obj.object_id]
        inst_tok = tables.token()
        for a in anns:
            a['instance_token'] = inst_tok
        NuScenesTables.link(anns)
        tables.tables['sample_annotation'].extend(anns)
        tables.add('instance', token=inst_tok, category_token=tables.category_token[obj.category],
                   nbr_annotations=len(anns), first_annotation_token=anns[0]['token'],
                   last_annotation_token=anns[-1]['token'])

"""Multi-view camera loading with the calibration BEVFusion's camera branch needs.

mmdet3d's ``LoadMultiViewImageFromFiles`` reads BGR images and leaves ``cam2img`` 3x3 and no
``lidar2img`` / ``cam2lidar``. BEVFusion expects RGB images and 4x4 matrices per camera. An image that cannot be
read or decoded is a *bad sample* (:mod:`.bad_sample`): named with the sample token and the camera.
"""
import copy
from collections import OrderedDict
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS
from mmengine.fileio import get

from .bad_sample import SensorFileError, bad_sample_message, check_on_bad_sample, raise_or_skip
from .sensor_file_checks import jpeg_structure_problem


def _as_4x4(mat) -> np.ndarray:
    mat = np.asarray(mat, dtype=np.float64)
    out = np.eye(4)
    out[:mat.shape[0], :mat.shape[1]] = mat
    return out


@TRANSFORMS.register_module()
class CLAPLoadMultiViewImageFromFiles(BaseTransform):
    """Load the cameras of ``results['images']`` (mmdet3d v2 infos) as RGB arrays.

    Adds ``img`` (list of (H, W, 3) arrays), ``img_path``, ``filename``, per-camera 4x4 arrays
    (stacked, (N, 4, 4)) ``cam2img``, ``lidar2cam``, ``cam2lidar``, ``lidar2img`` (= cam2img @ lidar2cam)
    and their ``ori_`` copies, ``img_shape`` / ``ori_shape`` / ``pad_shape`` ((H, W)), ``num_views``.

    Args:
        to_float32: convert images to float32.
        color_type: mmcv ``imfrombytes`` flag.
        backend_args: file backend arguments.
        num_views: expected number of cameras (checked).
        camera_names: cameras to load, in this order (default: the order of ``results['images']``).
        imdecode_backend: mmcv decoding backend.
        cache_bytes: keep up to this many bytes of decoded images in memory (least recently used first out),
            keyed by path; 0 (default) decodes every time. The cached arrays are never modified, so a cached
            load returns exactly what a fresh decode would. Worth it when few samples are read many times, as
            in fine-tuning on a small label fraction (a 1600x900 RGB image is 4.3 MB).
        on_bad_sample: 'raise' (default) or 'skip' (:mod:`.bad_sample`) for an image that cannot be read or
            decoded: empty, a JPEG without its end-of-image marker (its body is garbage or cut off; OpenCV
            would decode noise from it), or one the decoder refuses.
    """

    def __init__(self,
                 to_float32: bool = False,
                 color_type: str = 'color',
                 backend_args: Optional[dict] = None,
                 num_views: int = 6,
                 camera_names: Optional[Sequence[str]] = None,
                 imdecode_backend: str = 'cv2',
                 cache_bytes: int = 0,
                 on_bad_sample: str = 'raise') -> None:
        if int(cache_bytes) < 0:
            raise ValueError(f'cache_bytes must be >= 0, got {cache_bytes}')
        self.to_float32 = to_float32
        self.color_type = color_type
        self.backend_args = backend_args
        self.num_views = num_views
        self.camera_names = list(camera_names) if camera_names is not None else None
        self.imdecode_backend = imdecode_backend
        self.cache_bytes = int(cache_bytes)
        self.on_bad_sample = check_on_bad_sample(on_bad_sample)
        self._cache: 'OrderedDict[str, np.ndarray]' = OrderedDict()
        self._cached_bytes = 0

    def _decode(self, path: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB image of ``path``, from the cache when it holds it; :class:`SensorFileError`
        when it cannot be read or decoded."""
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        try:
            data = get(path, backend_args=self.backend_args)
        except Exception as exc:  # missing file, permission, backend errors
            raise SensorFileError(f'cannot be read: {type(exc).__name__}: {exc}', path) from exc
        problem = jpeg_structure_problem(data)
        if problem:
            raise SensorFileError(problem, path)
        try:
            img = mmcv.imfrombytes(data, flag=self.color_type, channel_order='rgb', backend=self.imdecode_backend)
        except Exception as exc:  # cv2.error when OpenCV returns no image (cvtColor on an empty array), ...
            raise SensorFileError(f'cannot be decoded: {type(exc).__name__}: {exc}', path) from exc
        if img is None or img.size == 0:
            raise SensorFileError('cannot be decoded: the decoder returned no image', path)
        if self.cache_bytes > 0 and img.nbytes <= self.cache_bytes:
            img.setflags(write=False)
            self._cache[path] = img
            self._cached_bytes += img.nbytes
            while self._cached_bytes > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= old.nbytes
        return img

    def transform(self, results: dict) -> Optional[dict]:
        """Load images and calibration of every camera; None when a bad image is skipped."""
        if 'images' not in results:
            raise KeyError("CLAPLoadMultiViewImageFromFiles needs results['images'] "
                           '(set modality use_camera=True)')
        images = results['images']
        names = self.camera_names if self.camera_names is not None else list(images.keys())
        missing = [n for n in names if n not in images]
        if missing:
            raise KeyError(f'cameras {missing} not in results["images"] ({list(images)})')
        if len(names) != self.num_views:
            raise ValueError(f'expected num_views={self.num_views} cameras, got {len(names)}')

        paths, cam2img, lidar2cam, cam2lidar, lidar2img, imgs = [], [], [], [], [], []
        for name in names:
            cam = images[name]
            for key in ('img_path', 'cam2img', 'lidar2cam'):
                if key not in cam:
                    raise KeyError(f'results["images"]["{name}"] lacks "{key}"')
            k = _as_4x4(cam['cam2img'])
            l2c = _as_4x4(cam['lidar2cam'])
            paths.append(cam['img_path'])
            cam2img.append(k)
            lidar2cam.append(l2c)
            cam2lidar.append(np.linalg.inv(l2c))
            lidar2img.append(k @ l2c)
            try:
                img = self._decode(cam['img_path'])
            except SensorFileError as err:
                message = bad_sample_message(cam['img_path'], name, err.reason, sample_token=results.get('token'),
                                             sample_data_token=cam.get('sample_data_token'))
                return raise_or_skip(message, cam['img_path'], self.on_bad_sample)
            imgs.append(img.astype(np.float32) if self.to_float32 else (img.copy() if self.cache_bytes else img))

        shapes = {im.shape for im in imgs}
        if len(shapes) != 1:
            raise ValueError(f'camera images differ in shape: {sorted(shapes)}')
        results['img'] = imgs
        results['img_path'] = paths
        results['filename'] = paths
        results['cam2img'] = np.stack(cam2img)
        results['lidar2cam'] = np.stack(lidar2cam)
        results['cam2lidar'] = np.stack(cam2lidar)
        results['lidar2img'] = np.stack(lidar2img)
        results['ori_cam2img'] = copy.deepcopy(results['cam2img'])
        results['ori_lidar2img'] = copy.deepcopy(results['lidar2img'])
        results['img_shape'] = imgs[0].shape[:2]
        results['ori_shape'] = imgs[0].shape[:2]
        results['pad_shape'] = imgs[0].shape[:2]
        results['scale_factor'] = 1.0
        results['num_views'] = len(names)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(to_float32={self.to_float32}, '
                f'color_type={self.color_type!r}, num_views={self.num_views}, '
                f'camera_names={self.camera_names}, on_bad_sample={self.on_bad_sample!r})')

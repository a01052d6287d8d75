"""mmdet3d's LiDAR loaders with checked reads: a file that cannot be read, is truncated (not whole float32 x
``load_dim`` points) or holds NaN / inf is a *bad sample* (:mod:`.bad_sample`), named with its sample token and
sensor instead of failing later in a reshape or, worse, training on garbage."""
from typing import Optional

import numpy as np
from mmdet3d.datasets.transforms.loading import LoadPointsFromFile, LoadPointsFromMultiSweeps
from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures.points import BasePoints
from mmengine.fileio import get

from .bad_sample import SensorFileError, bad_sample_message, check_on_bad_sample, raise_or_skip
from .sensor_file_checks import point_bytes_problem

# the type names of the sweep loaders, for code that finds the step in a pipeline config
SWEEP_LOADERS = ('LoadPointsFromMultiSweeps', 'CLAPLoadPointsFromMultiSweeps')


def read_points(path: str, load_dim: int, backend_args: Optional[dict] = None) -> np.ndarray:
    """The float32 values of a point file (flat); :class:`SensorFileError` when unreadable or malformed."""
    try:
        data = get(path, backend_args=backend_args)
    except Exception as exc:  # missing file, permission, backend errors
        raise SensorFileError(f'cannot be read: {type(exc).__name__}: {exc}', path) from exc
    problem = point_bytes_problem(data, load_dim)
    if problem:
        raise SensorFileError(problem, path)
    return np.frombuffer(data, dtype=np.float32)


class _CheckedReads:
    """What both loaders add to mmdet3d's: the ``on_bad_sample`` policy and reads through :func:`read_points`."""

    def __init__(self, *args, on_bad_sample: str = 'raise', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.on_bad_sample = check_on_bad_sample(on_bad_sample)

    def _load_points(self, pts_filename: str) -> np.ndarray:
        return read_points(pts_filename, self.load_dim, self.backend_args)


@TRANSFORMS.register_module()
class CLAPLoadPointsFromFile(_CheckedReads, LoadPointsFromFile):
    """mmdet3d's ``LoadPointsFromFile`` (same arguments) whose bad files are named (file, ``results['token']``,
    LIDAR_TOP) and raised as :class:`BadSampleError` or skipped, by ``on_bad_sample`` ('raise' / 'skip')."""

    sensor = 'LIDAR_TOP'

    def load_file(self, path: str, sample_token: Optional[str] = None, sensor: Optional[str] = None,
                  where: Optional[str] = None) -> Optional[BasePoints]:
        """The points of ``path`` (``use_dim`` etc. applied), or None when skipped as a bad sample.

        ``sensor`` / ``where`` name the file in the report where it is not a sample's keyframe (the GT
        database); see :func:`.bad_sample.bad_sample_message`."""
        try:
            return super().transform(dict(lidar_points=dict(lidar_path=path)))['points']
        except SensorFileError as err:
            message = bad_sample_message(path, sensor or self.sensor, err.reason, sample_token=sample_token,
                                         where=where)
            return raise_or_skip(message, path, self.on_bad_sample)

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['lidar_points']['lidar_path']`` into ``results['points']``; None when skipped."""
        points = self.load_file(results['lidar_points']['lidar_path'], results.get('token'))
        if points is None:
            return None
        results['points'] = points
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', on_bad_sample={self.on_bad_sample!r})'


@TRANSFORMS.register_module()
class CLAPLoadPointsFromMultiSweeps(_CheckedReads, LoadPointsFromMultiSweeps):
    """mmdet3d's ``LoadPointsFromMultiSweeps`` (same arguments) whose bad sweep files are named (file, the
    sample token, the sweep's sample_data token, "LIDAR_TOP sweep") and raised as :class:`BadSampleError` or
    skipped, by ``on_bad_sample`` ('raise' / 'skip')."""

    sensor = 'LIDAR_TOP sweep'

    def transform(self, results: dict) -> Optional[dict]:
        """Add the sweeps' points to ``results['points']``; None when a sweep is skipped as a bad sample."""
        try:
            return super().transform(results)
        except SensorFileError as err:
            sweep = next((s for s in results.get('lidar_sweeps', [])
                          if s.get('lidar_points', {}).get('lidar_path') == err.path), {})
            message = bad_sample_message(err.path, self.sensor, err.reason, sample_token=results.get('token'),
                                         sample_data_token=sweep.get('sample_data_token'))
            return raise_or_skip(message, err.path, self.on_bad_sample)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(sweeps_num={self.sweeps_num}, test_mode={self.test_mode}, '
                f'on_bad_sample={self.on_bad_sample!r})')

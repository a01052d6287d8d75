"""mmdet3d's ``DataBaseSampler`` that skips the classes its database has no object of.

mmdet3d's sampler draws ``sample_groups[name]`` objects of every listed class and fails (``np.stack`` of an
empty list, or a KeyError) when the database holds no object of a class after the ``prepare`` filters. On full
nuScenes every class is present; a small or synthetic set may lack one. This sampler drops those classes from
the sampling groups, says which in the log, and refuses a database from which nothing at all can be drawn.

``sample_all`` is re-implemented because mmdet3d 1.4's builds the label array with ``np.long``, which numpy
>= 1.24 (the pinned 1.26) no longer has: every draw that pastes an object fails there.

A database file that cannot be read is a *bad sample* (:mod:`.bad_sample`), named with its database entry
(class, box and training sample index) as "LIDAR_TOP GT-database object"; with ``CLAPLoadPointsFromFile`` as
``points_loader`` its ``on_bad_sample`` decides: raise, or leave that object out of the paste and count it.
"""
import os.path as osp
from typing import Optional

import numpy as np
from mmdet3d.datasets.transforms.dbsampler import DataBaseSampler
from mmdet3d.registry import TRANSFORMS
from mmengine.logging import print_log

from .bad_sample import BadSampleError, bad_sample_message
from .points_loading import CLAPLoadPointsFromFile

GT_DATABASE_SENSOR = 'LIDAR_TOP GT-database object'


@TRANSFORMS.register_module()
class CLAPDataBaseSampler(DataBaseSampler):
    """``DataBaseSampler`` (same arguments) whose sampling groups only name classes present in the database."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        keep = [(name, num) for name, num in zip(self.sample_classes, self.sample_max_nums)
                if len(self.db_infos.get(name, [])) > 0]
        dropped = [name for name in self.sample_classes if name not in {n for n, _ in keep}]
        if not keep:
            raise ValueError(f'GT-sampling database {self.info_path}: no object of the classes '
                             f'{self.sample_classes} is left after the filters {self.prepare}')
        if dropped:
            print_log(f'GT sampling: {self.info_path} has no object of {dropped} after the filters; '
                      'they are not sampled', logger='current')
        self.sample_classes = [n for n, _ in keep]
        self.sample_max_nums = [m for _, m in keep]
        self.sample_groups = [{n: m} for n, m in keep]

    def sample_all(self, gt_bboxes: np.ndarray, gt_labels: np.ndarray, img: Optional[np.ndarray] = None,
                   ground_plane: Optional[np.ndarray] = None) -> Optional[dict]:
        """Draw database objects up to ``sample_groups`` per class (minus the scene's own), each checked for
        collisions against the scene's boxes and the objects drawn before it; None when nothing fits.

        Returns ``gt_bboxes_3d`` (N, 7+), ``gt_labels_3d`` (N,) int64, ``points`` (the drawn objects' points,
        moved to their boxes) and ``group_ids``, as mmdet3d's ``ObjectSample`` expects.
        """
        labels_in_scene = np.asarray(gt_labels).reshape(-1)
        avoid = gt_bboxes
        drawn = []
        for name, max_num in zip(self.sample_classes, self.sample_max_nums):
            wanted = max_num - int(np.sum(labels_in_scene == self.cat2label[name]))
            wanted = int(np.round(self.rate * wanted))
            if wanted <= 0:
                continue
            objects = self.sample_class_v2(name, wanted, avoid)
            if objects:
                avoid = np.concatenate([avoid, np.stack([o['box3d_lidar'] for o in objects], axis=0)], axis=0)
                drawn += objects
        clouds, kept = [], []
        for obj in drawn:
            cloud = self._load_object(obj)
            if cloud is None:  # a bad database file, skipped (on_bad_sample='skip')
                continue
            cloud.translate(obj['box3d_lidar'][:3])  # stored relative to the box centre
            clouds.append(cloud)
            kept.append(obj)
        if not kept:
            return None
        drawn = kept
        boxes = np.stack([o['box3d_lidar'] for o in drawn], axis=0)
        if ground_plane is not None:  # put the objects on the scene's ground plane
            dz = (ground_plane[:3][None, :] * boxes[:, :3]).sum(-1) + ground_plane[3]
            boxes[:, 2] -= dz
            for cloud, d in zip(clouds, dz):
                cloud.tensor[:, 2].sub_(float(d))
        first = gt_bboxes.shape[0]
        return dict(gt_labels_3d=np.array([self.cat2label[o['name']] for o in drawn], dtype=np.int64),
                    gt_bboxes_3d=boxes, points=clouds[0].cat(clouds),
                    group_ids=np.arange(first, first + len(drawn)))

    def _load_object(self, obj: dict):
        """The points of one database object (relative to its box centre); None when skipped as bad."""
        path = osp.join(self.data_root, obj['path']) if self.data_root else obj['path']
        where = (f'{obj.get("name")} box {obj.get("gt_idx")} of training sample_idx {obj.get("image_idx")} '
                 f'in {self.info_path}')
        if isinstance(self.points_loader, CLAPLoadPointsFromFile):
            return self.points_loader.load_file(path, sensor=GT_DATABASE_SENSOR, where=where)
        try:  # another loader (mmdet3d's LoadPointsFromFile): its errors named all the same
            return self.points_loader(dict(lidar_points=dict(lidar_path=path)))['points']
        except Exception as exc:
            raise BadSampleError(bad_sample_message(path, GT_DATABASE_SENSOR, f'{type(exc).__name__}: {exc}',
                                                    where=where)) from None

"""LiDAR-only pipelines from lidar-cam ones, for the LiDAR-only fine-tune configs (stage 1 of BEVFusion's
two-stage recipe): the camera steps are left out, ``Pack3DDetInputs`` packs no image, and GT sampling
(``ObjectSample``) pastes database objects right after the labels are loaded."""
from typing import List, Optional, Sequence

CAMERA_STEPS = ('CLAPLoadMultiViewImageFromFiles', 'CLAPImageAug3D', 'CLAPGridMask')
LIDAR_KEYS = ['points', 'gt_bboxes_3d', 'gt_labels_3d']


def lidar_only_pipeline(steps: Sequence[dict], db_sampler: Optional[dict] = None) -> List[dict]:
    """The steps of a lidar-cam pipeline without its camera steps; with ``db_sampler``, an ``ObjectSample``
    step after ``LoadAnnotations3D``. The step dicts are copied, never changed in place."""
    out = []
    for step in steps:
        if step['type'] in CAMERA_STEPS:
            continue
        out.append(dict(step, keys=list(LIDAR_KEYS)) if step['type'] == 'Pack3DDetInputs' else step)
        if db_sampler is not None and step['type'] == 'LoadAnnotations3D':
            out.append(dict(type='ObjectSample', db_sampler=db_sampler))
    return out

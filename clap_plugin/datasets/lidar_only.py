"""LiDAR-only pipelines from lidar-cam ones, for the LiDAR-only fine-tune configs (stage 1 of BEVFusion's
two-stage recipe): the camera steps are left out, ``Pack3DDetInputs`` packs no image, and GT sampling
(``ObjectSample``) pastes database objects right after the labels are loaded."""
import copy
from typing import List, NamedTuple, Optional, Sequence

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


def _with_inner_dataset(loader: dict, **fields) -> dict:
    """A copy of a dataloader config whose innermost dataset (below any wrappers: CBGS, label fraction) gets
    ``fields``."""
    out = copy.deepcopy(dict(loader))
    node = out['dataset']
    while 'dataset' in node:
        node = node['dataset']
    node.update(fields)
    return out


class LidarOnlySettings(NamedTuple):
    """The keys a LiDAR-only fine-tune config sets, in the order a config unpacks them."""
    input_modality: dict
    db_sampler: dict
    train_pipeline: List[dict]
    test_pipeline: List[dict]
    model: dict
    train_dataloader: dict
    val_dataloader: dict
    test_dataloader: dict
    val_evaluator: dict
    test_evaluator: dict


def lidar_only_settings(train_pipeline: Sequence[dict], test_pipeline: Sequence[dict], db_sampler: dict,
                        data_root: str, classes: Sequence[str], train_dataloader: dict,
                        val_dataloader: dict) -> LidarOnlySettings:
    """Every key a LiDAR-only fine-tune config sets on top of its lidar-cam base (the full-size one or the
    CPU-tiny one): the model without its camera branch, LiDAR-only pipelines with GT sampling from the database of
    tools/create_data.py under ``data_root``, the dataloaders (whatever wrappers they have) and the evaluators
    with the LiDAR-only modality. A config unpacks them into its top-level names."""
    modality = dict(use_lidar=True, use_camera=False)
    sampler = dict(db_sampler, data_root=data_root, info_path=data_root + 'nuscenes_dbinfos_train.pkl',
                   classes=list(classes))
    train = lidar_only_pipeline(train_pipeline, sampler)
    test = lidar_only_pipeline(test_pipeline)
    val_loader = _with_inner_dataset(val_dataloader, pipeline=test, modality=modality)
    return LidarOnlySettings(
        input_modality=modality, db_sampler=sampler, train_pipeline=train, test_pipeline=test,
        model=dict(img_backbone=None, img_neck=None, view_transform=None, fusion_layer=None),
        train_dataloader=_with_inner_dataset(train_dataloader, pipeline=train, modality=modality),
        val_dataloader=val_loader, test_dataloader=copy.deepcopy(val_loader), val_evaluator=dict(modality=modality),
        test_evaluator=dict(modality=modality))

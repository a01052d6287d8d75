"""How many distinct objects a labelled subset holds, per class.

A scene's objects recur in every keyframe, so the box count of a subset overstates what the detector is shown:
six keyframes of one parked car are one car. :func:`count_objects` counts both, the distinct objects by their
nuScenes instance token. The boxes are those of the mmdet3d v2 info file (what the training dataset reads), kept
as the fine-tune pipeline keeps them before augmentation: a class of the dataset (``bbox_label_3d >= 0``), the
valid flag (``use_valid_flag``: at least one LiDAR or radar point) and, with ``point_cloud_range``, a box centre
inside the BEV range (``ObjectRangeFilter``; training applies it after the global augmentation, so a box at the
range's edge may go either way). The instance token of each box comes from the nuScenes tables: mmdet3d's
converter writes a sample's ``instances`` in the order of its ``sample['anns']``, which is the order of the
``sample_annotation`` table; the sizes are checked to agree.
"""
import json
import os.path as osp
import pickle
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from clap_plugin.datasets.label_fraction import label_fraction_indices


@dataclass
class ObjectCounts:
    """Annotated objects of a set of samples, per class name.

    Attributes:
        samples: number of samples.
        boxes: class -> boxes (one per object and sample it is annotated in).
        distinct: class -> distinct objects (nuScenes instance tokens).
    """
    samples: int
    boxes: Dict[str, int] = field(default_factory=dict)
    distinct: Dict[str, int] = field(default_factory=dict)

    def to_json(self) -> Dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> 'ObjectCounts':
        return cls(samples=int(data['samples']), boxes=dict(data['boxes']), distinct=dict(data['distinct']))


@dataclass(frozen=True)
class AnnotationRef:
    """One row of the ``sample_annotation`` table: its instance token and size (w, l, h)."""
    instance_token: str
    size: Tuple[float, float, float]


def load_infos(info_path: str) -> Tuple[List[dict], Dict[int, str]]:
    """The ``data_list`` of an mmdet3d v2 info file and its label -> class name map (``metainfo.categories``)."""
    with open(info_path, 'rb') as f:
        data = pickle.load(f)
    if not isinstance(data, dict) or 'data_list' not in data:
        raise ValueError(f'{info_path}: not an mmdet3d v2 info file (no data_list)')
    categories = data.get('metainfo', {}).get('categories')
    if not categories:
        raise ValueError(f'{info_path}: metainfo.categories is missing; cannot name the labels')
    return data['data_list'], {int(v): str(k) for k, v in categories.items()}


def sample_annotations(table_dir: str, sample_tokens: Iterable[str]) -> Dict[str, List[AnnotationRef]]:
    """sample token -> its ``sample_annotation`` rows, in table order, for the given samples of
    ``table_dir/sample_annotation.json``."""
    wanted = set(sample_tokens)
    path = osp.join(table_dir, 'sample_annotation.json')
    if not osp.isfile(path):
        raise FileNotFoundError(f'no nuScenes table {path}')
    with open(path) as f:
        rows = json.load(f)
    out: Dict[str, List[AnnotationRef]] = {t: [] for t in wanted}
    for r in rows:
        if r['sample_token'] in wanted:
            out[r['sample_token']].append(AnnotationRef(r['instance_token'], tuple(float(v) for v in r['size'])))
    return out


def count_objects(infos: Sequence[dict], annotations: Mapping[str, Sequence[AnnotationRef]],
                  label_names: Mapping[int, str], use_valid_flag: bool = True,
                  point_cloud_range: Optional[Sequence[float]] = None) -> ObjectCounts:
    """Boxes and distinct objects per class over the samples ``infos`` (v2 info entries).

    Args:
        infos: the samples (each with ``token`` and ``instances``).
        annotations: sample token -> its annotation rows in table order (:func:`sample_annotations`).
        label_names: info label -> class name.
        use_valid_flag: keep only boxes with ``bbox_3d_isvalid`` (the dataset option of the same name).
        point_cloud_range: [x0, y0, z0, x1, y1, z1]; keep boxes whose centre lies strictly inside (x0, x1) x
            (y0, y1), as ``ObjectRangeFilter``. None keeps all.

    Returns:
        :class:`ObjectCounts` with every class of ``label_names`` (zeros included), in label order.
    """
    names = [label_names[k] for k in sorted(label_names)]
    boxes = {n: 0 for n in names}
    instances: Dict[str, set] = {n: set() for n in names}
    for info in infos:
        token = info['token']
        rows = annotations.get(token)
        if rows is None:
            raise KeyError(f'sample {token}: no annotation rows given for it')
        inst = info.get('instances', [])
        if len(rows) != len(inst):
            raise ValueError(f'sample {token}: {len(inst)} instances in the info file but {len(rows)} rows in '
                             'sample_annotation; the info file does not belong to these tables')
        for box, ref in zip(inst, rows):
            lwh = np.asarray(box['bbox_3d'][3:6], dtype=np.float64)
            w, l, h = ref.size
            if not np.allclose(lwh, [l, w, h], rtol=1e-4, atol=1e-4):
                raise ValueError(f'sample {token}: instance size {lwh.tolist()} (l, w, h) differs from its '
                                 f'annotation row {ref.instance_token} (w, l, h = {list(ref.size)}); the rows are '
                                 'not in the order of the info file')
            label = int(box.get('bbox_label_3d', box.get('bbox_label', -1)))
            if label < 0 or label not in label_names:
                continue
            if use_valid_flag and not bool(box.get('bbox_3d_isvalid', True)):
                continue
            if point_cloud_range is not None:
                x, y = float(box['bbox_3d'][0]), float(box['bbox_3d'][1])
                x0, y0, _, x1, y1, _ = (float(v) for v in point_cloud_range)
                if not (x0 < x < x1 and y0 < y < y1):
                    continue
            name = label_names[label]
            boxes[name] += 1
            instances[name].add(ref.instance_token)
    return ObjectCounts(samples=len(infos), boxes=boxes, distinct={n: len(instances[n]) for n in names})


@dataclass
class InfoObjects:
    """An info file with its samples' annotation rows, to count the objects of any subset of its samples."""
    infos: List[dict]
    label_names: Dict[int, str]
    annotations: Dict[str, List[AnnotationRef]]

    @classmethod
    def load(cls, data_root: str, version: str, split: str = 'train',
             info_prefix: str = 'nuscenes') -> 'InfoObjects':
        """``data_root/<info_prefix>_infos_<split>.pkl`` and ``data_root/<version>/sample_annotation.json``."""
        infos, label_names = load_infos(osp.join(data_root, f'{info_prefix}_infos_{split}.pkl'))
        annotations = sample_annotations(osp.join(data_root, version), (i['token'] for i in infos))
        return cls(infos, label_names, annotations)

    def count(self, indices: Optional[Sequence[int]] = None, use_valid_flag: bool = True,
              point_cloud_range: Optional[Sequence[float]] = None) -> ObjectCounts:
        """:func:`count_objects` over the samples at ``indices`` of the info file (None: all)."""
        infos = self.infos if indices is None else [self.infos[i] for i in indices]
        return count_objects(infos, self.annotations, self.label_names, use_valid_flag, point_cloud_range)

    def labelled_subset(self, fraction: float, seed: int, use_valid_flag: bool = True,
                        point_cloud_range: Optional[Sequence[float]] = None) -> ObjectCounts:
        """The objects of the samples that ``LabelFractionDataset(fraction, seed)`` keeps of this info file."""
        return self.count(label_fraction_indices(len(self.infos), fraction, seed), use_valid_flag,
                          point_cloud_range)

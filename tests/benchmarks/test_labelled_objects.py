"""Distinct annotated objects per class in a labelled subset: counted from the info file and the nuScenes tables,
checked against a naive count through the nuScenes devkit, and carried into the benchmark's records and report."""
import json
import os.path as osp
import shutil

import pytest

from clap_plugin.benchmarks.label_efficiency.objects import InfoObjects, ObjectCounts, sample_annotations
from clap_plugin.datasets.label_fraction import label_fraction_indices


def naive_counts(root, version, tokens):
    """Boxes and distinct instance tokens per detection class of the samples ``tokens``, straight from the devkit:
    every annotation of the sample with a LiDAR or radar point, its category mapped as mmdet3d's converter maps it."""
    from mmdet3d.datasets.convert_utils import NuScenesNameMapping
    from nuscenes.nuscenes import NuScenes
    nusc = NuScenes(version=version, dataroot=root, verbose=False)
    boxes, distinct = {}, {}
    for token in tokens:
        for ann_token in nusc.get('sample', token)['anns']:
            ann = nusc.get('sample_annotation', ann_token)
            if ann['num_lidar_pts'] + ann['num_radar_pts'] == 0:
                continue
            cls = NuScenesNameMapping.get(ann['category_name'])
            if cls is None:
                continue
            boxes[cls] = boxes.get(cls, 0) + 1
            distinct.setdefault(cls, set()).add(ann['instance_token'])
    return boxes, {k: len(v) for k, v in distinct.items()}


def _nonzero(d):
    return {k: v for k, v in d.items() if v}


def test_distinct_objects_match_a_naive_devkit_count(synthetic_nus):
    objects = InfoObjects.load(synthetic_nus, 'v1.0-mini', 'train')
    n = len(objects.infos)
    assert n == 3  # one train scene of 3 keyframes (tests/helpers/fixtures.py)
    for fraction, seed in ((1.0, 0), (0.34, 0), (0.67, 1)):
        keep = label_fraction_indices(n, fraction, seed)
        counts = objects.labelled_subset(fraction, seed)
        boxes, distinct = naive_counts(synthetic_nus, 'v1.0-mini', [objects.infos[i]['token'] for i in keep])
        assert counts.samples == len(keep)
        assert _nonzero(counts.distinct) == distinct and _nonzero(counts.boxes) == boxes
        assert set(counts.distinct) == set(objects.label_names.values())  # every class listed, zeros included
    # the scene's objects recur in its keyframes: three keyframes hold more boxes than objects
    full = objects.count()
    assert sum(full.boxes.values()) > sum(full.distinct.values()) >= 10
    assert all(full.distinct[k] <= full.boxes[k] <= 3 * full.distinct[k] for k in full.boxes)
    one = objects.labelled_subset(0.34, 0)
    assert one.boxes == one.distinct  # one keyframe: one box per object


def test_range_filter_and_valid_flag_drop_boxes(synthetic_nus):
    objects = InfoObjects.load(synthetic_nus, 'v1.0-mini', 'train')
    full = objects.count()
    ranged = objects.count(point_cloud_range=[-54.0, -54.0, -5.0, 54.0, 54.0, 3.0])
    assert all(ranged.boxes[k] <= full.boxes[k] for k in full.boxes)
    assert sum(objects.count(point_cloud_range=[-1.0, -1.0, -5.0, 1.0, 1.0, 3.0]).boxes.values()) == 0
    invalid = sum(1 for info in objects.infos for inst in info['instances']
                  if not inst['bbox_3d_isvalid'] and inst['bbox_label_3d'] >= 0)
    everything = objects.count(use_valid_flag=False)
    assert sum(everything.boxes.values()) == sum(full.boxes.values()) + invalid


def test_the_dataset_reads_the_info_file_in_order(synthetic_nus):
    """The subsets are label_fraction_indices over the info file's order: the training dataset keeps that order."""
    from mmdet3d.registry import DATASETS
    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, 'configs', 'bevfusion_lidar-cam_finetune_nus_cpu-tiny.py'))
    inner = cfg.train_dataloader.dataset.dataset
    inner.data_root = synthetic_nus
    ds = DATASETS.build(inner)
    objects = InfoObjects.load(synthetic_nus, 'v1.0-mini', 'train')
    assert [ds.get_data_info(i)['token'] for i in range(len(ds))] == [i['token'] for i in objects.infos]


def test_rows_out_of_order_or_missing_are_refused(synthetic_nus, tmp_path):
    objects = InfoObjects.load(synthetic_nus, 'v1.0-mini', 'train')
    token = objects.infos[0]['token']
    rows = list(objects.annotations[token])
    sizes = [r.size for r in rows]
    j = next(j for j in range(1, len(rows)) if sizes[j] != sizes[0])
    rows[0], rows[j] = rows[j], rows[0]
    with pytest.raises(ValueError, match='not in the order'):
        InfoObjects(objects.infos, objects.label_names, dict(objects.annotations, **{token: rows})).count()
    with pytest.raises(ValueError, match='instances in the info file'):
        InfoObjects(objects.infos, objects.label_names, dict(objects.annotations, **{token: rows[1:]})).count()
    with pytest.raises(FileNotFoundError, match='sample_annotation'):
        sample_annotations(str(tmp_path), [token])


def test_benchmark_records_and_report_carry_the_counts(synthetic_nus, tmp_path):
    from clap_plugin.benchmarks.label_efficiency import PRESETS
    from clap_plugin.benchmarks.label_efficiency.jobs import labelled_objects, object_counts
    from clap_plugin.benchmarks.label_efficiency.report import objects_table
    data = dict(data_root=synthetic_nus, version='v1.0-mini')
    train = object_counts(data, 'train', [(0.5, 0)])
    assert set(train) == {'all', 'f0.5-s0'}
    sub = ObjectCounts.from_json(labelled_objects(data, 0.5, 0))
    assert sub == ObjectCounts.from_json(train['f0.5-s0']) and sub.samples == 2
    # the counts use the fine-tune config's range filter
    pcr = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
    assert sub == InfoObjects.load(synthetic_nus, 'v1.0-mini').labelled_subset(0.5, 0, point_cloud_range=pcr)
    assert 'error' in object_counts(dict(data_root=str(tmp_path), version='v1.0-mini'), 'train')
    records = dict(data=dict(objects=dict(train=train, val=object_counts(data, 'val'))),
                   **{'finetune-scratch-f0.5-s0': dict(arm='scratch', fraction=0.5, seed=0, mAP=0, NDS=0,
                                                       labelled_objects=train['f0.5-s0'])})
    lines = objects_table(records)
    text = '\n'.join(lines)
    assert '| train split (all) | 3 |' in text and '| labelled 0.5, seed 0 | 2 |' in text and '| val split |' in text
    car = ObjectCounts.from_json(train['f0.5-s0'])
    assert f'{car.distinct["car"]} ({car.boxes["car"]})' in text
    assert PRESETS['smoke'].to_json()['heatmap_prior_prob'] == 0.1
    json.dumps(records)  # the records stay JSON
    shutil.rmtree(tmp_path, ignore_errors=True)

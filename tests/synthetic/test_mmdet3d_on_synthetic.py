"""mmdet3d's NuScenesDataset and NuScenesMetric run unchanged on the synthetic set."""
import os.path as osp

import numpy as np
import pytest
import torch

import clap_plugin  # noqa: F401  (registers transforms)

CLASSES = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle', 'bicycle', 'motorcycle', 'pedestrian',
           'traffic_cone', 'barrier')


def _dataset(root, prefix, split, pipeline, test_mode=False):
    from mmdet3d.datasets import NuScenesDataset
    return NuScenesDataset(data_root=root, ann_file=f'nuscenes_infos_{split}.pkl', data_prefix=prefix,
                           pipeline=pipeline, metainfo=dict(classes=CLASSES),
                           modality=dict(use_lidar=True, use_camera=True), test_mode=test_mode, box_type_3d='LiDAR')


def test_infos_are_v2_format(synthetic_nus):
    import mmengine
    infos = mmengine.load(osp.join(synthetic_nus, 'nuscenes_infos_train.pkl'))
    assert infos['metainfo']['version'] == 'v1.0-mini'
    info = infos['data_list'][0]
    assert {'lidar_points', 'images', 'instances', 'lidar_sweeps', 'ego2global'} <= set(info)
    assert set(info['images']) == {'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT',
                                   'CAM_BACK_RIGHT'}
    assert {'cam2img', 'lidar2cam', 'img_path'} <= set(info['images']['CAM_FRONT'])
    assert len(info['lidar_sweeps']) == 2
    val = mmengine.load(osp.join(synthetic_nus, 'nuscenes_infos_val.pkl'))
    assert len(infos['data_list']) == 3 and len(val['data_list']) == 3


def test_multimodal_pipeline_projects_box_points_into_box_extent(synthetic_nus, nus_prefix):
    pipeline = [
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
        dict(type='LoadPointsFromMultiSweeps', sweeps_num=2, use_dim=[0, 1, 2, 3, 4], pad_empty_sweeps=True,
             remove_close=True),
        dict(type='CLAPLoadMultiViewImageFromFiles', to_float32=True),
        dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True, with_attr_label=False),
        dict(type='Pack3DDetInputs', keys=['points', 'img', 'gt_bboxes_3d', 'gt_labels_3d'],
             meta_keys=['lidar2img', 'img_shape', 'sample_idx', 'num_pts_feats']),
    ]
    ds = _dataset(synthetic_nus, nus_prefix, 'train', pipeline)
    checked = 0
    for i in range(len(ds)):
        item = ds[i]
        inputs, sample = item['inputs'], item['data_samples']
        assert inputs['img'].shape[0] == 6 and tuple(inputs['img'].shape[-2:]) == (900, 1600)
        lidar2img = np.asarray(sample.metainfo['lidar2img'])
        assert lidar2img.shape == (6, 4, 4)
        points = inputs['points'][:, :3]
        boxes = sample.gt_instances_3d.bboxes_3d
        from mmcv.ops import points_in_boxes_cpu
        inside = points_in_boxes_cpu(points[None].float(), boxes.tensor[None, :, :7].float())[0]  # (N, M)
        corners = boxes.corners.numpy()  # (M, 8, 3)
        for m in range(len(boxes)):
            pts = points[inside[:, m].bool()].numpy()
            if len(pts) < 20:
                continue
            for cam in range(6):
                c = np.concatenate([corners[m], np.ones((8, 1))], 1) @ lidar2img[cam].T
                if (c[:, 2] <= 0.5).any():
                    continue
                uv_c = c[:, :2] / c[:, 2:3]
                if uv_c[:, 0].max() < 0 or uv_c[:, 0].min() > 1600 or uv_c[:, 1].max() < 0 or uv_c[:, 1].min() > 900:
                    continue
                p = np.concatenate([pts, np.ones((len(pts), 1))], 1) @ lidar2img[cam].T
                uv = p[:, :2] / p[:, 2:3]
                lo, hi = uv_c.min(0) - 1, uv_c.max(0) + 1
                assert ((uv >= lo) & (uv <= hi)).all(), (i, m, cam)
                checked += 1
    assert checked >= 10


def test_nuscenes_metric_on_ground_truth_predictions(synthetic_nus, nus_prefix, tmp_path):
    """The devkit evaluation chain: ground-truth boxes fed as predictions give mAP and NDS of ~1."""
    from mmdet3d.evaluation import NuScenesMetric
    from mmdet3d.structures import LiDARInstance3DBoxes
    ds = _dataset(synthetic_nus, nus_prefix, 'val', pipeline=[])
    metric = NuScenesMetric(data_root=synthetic_nus, ann_file=osp.join(synthetic_nus, 'nuscenes_infos_val.pkl'),
                            metric='bbox', modality=dict(use_lidar=True, use_camera=False),
                            jsonfile_prefix=str(tmp_path / 'results'))
    metric.dataset_meta = dict(classes=CLASSES, version='v1.0-mini')
    results = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        ann = info['ann_info']
        boxes = ann['gt_bboxes_3d']
        assert isinstance(boxes, LiDARInstance3DBoxes) and boxes.tensor.shape[1] == 9
        labels = torch.as_tensor(ann['gt_labels_3d'])
        keep = labels >= 0
        results.append(dict(sample_idx=info['sample_idx'],
                            pred_instances_3d=dict(bboxes_3d=boxes[keep], scores_3d=torch.ones(int(keep.sum())),
                                                   labels_3d=labels[keep]),
                            pred_instances=dict()))
    metric.process({}, results)
    out = metric.compute_metrics(metric.results)
    m_ap = out['pred_instances_3d_NuScenes/mAP']
    nds = out['pred_instances_3d_NuScenes/NDS']
    assert m_ap >= 0.99, out
    assert nds >= 0.99, out


def test_metric_scores_an_empty_prediction_set_as_zero(synthetic_nus, nus_prefix, tmp_path):
    """The devkit raises when no predicted box is left in range; CLAPNuScenesMetric returns mAP = NDS = 0
    with NuScenesMetric's keys."""
    from mmdet3d.evaluation import NuScenesMetric
    from mmdet3d.structures import LiDARInstance3DBoxes

    from clap_plugin.evaluation import CLAPNuScenesMetric
    ds = _dataset(synthetic_nus, nus_prefix, 'val', pipeline=[])
    kwargs = dict(data_root=synthetic_nus, ann_file=osp.join(synthetic_nus, 'nuscenes_infos_val.pkl'),
                  metric='bbox', modality=dict(use_lidar=True, use_camera=False))
    results = []
    for i in range(len(ds)):
        far = torch.tensor([[500.0, 500.0, 0.0, 4.0, 2.0, 1.5, 0.0, 0.0, 0.0]])  # outside every class range
        results.append(dict(sample_idx=ds.get_data_info(i)['sample_idx'],
                            pred_instances_3d=dict(bboxes_3d=LiDARInstance3DBoxes(far, box_dim=9),
                                                   scores_3d=torch.ones(1), labels_3d=torch.zeros(1).long()),
                            pred_instances=dict()))
    plain = NuScenesMetric(jsonfile_prefix=str(tmp_path / 'a'), **kwargs)
    plain.dataset_meta = dict(classes=CLASSES, version='v1.0-mini')
    plain.process({}, results)
    with pytest.raises(Exception, match='Invalid box type'):
        plain.compute_metrics(plain.results)
    ours = CLAPNuScenesMetric(jsonfile_prefix=str(tmp_path / 'b'), **kwargs)
    ours.dataset_meta = dict(classes=CLASSES, version='v1.0-mini')
    ours.process({}, results)
    out = ours.compute_metrics(ours.results)
    assert out['pred_instances_3d_NuScenes/mAP'] == 0.0 and out['pred_instances_3d_NuScenes/NDS'] == 0.0
    assert out['pred_instances_3d_NuScenes/car_AP_dist_1.0'] == 0.0 and out['pred_instances_3d_NuScenes/mATE'] == 1.0

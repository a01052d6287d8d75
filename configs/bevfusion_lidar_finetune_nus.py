# LiDAR-only variant of bevfusion_lidar-cam_finetune_nus.py: the same detector without the camera branch
# (no img_backbone / img_neck / view_transform / fusion_layer; the LiDAR BEV goes straight into the SECOND
# backbone), LiDAR-only pipelines, and GT sampling as in mmdet3d's LiDAR-only BEVFusion recipe: ObjectSample
# pastes objects from the database of tools/create_data.py (nuscenes_dbinfos_train.pkl,
# nuscenes_gt_database/) into the training scenes, and CLAPDisableObjectSampleHook turns it off for the last 5
# of the 20 epochs. A CLAP checkpoint's pts_voxel_encoder / pts_middle_encoder / pts_backbone / pts_neck weights
# load into it (tools/compose_checkpoint.py lidar-stage keeps exactly those). This is stage 1 of mmdet3d's
# two-stage recipe; stage 2 is bevfusion_lidar-cam_finetune_nus.py from tools/compose_checkpoint.py
# lidar-cam-stage (see README).
_base_ = ['./bevfusion_lidar-cam_finetune_nus.py']

input_modality = dict(use_lidar=True, use_camera=False)
_camera_steps = ('CLAPLoadMultiViewImageFromFiles', 'CLAPImageAug3D', 'CLAPGridMask')

model = dict(img_backbone=None, img_neck=None, view_transform=None, fusion_layer=None)

db_sampler = dict(
    type='CLAPDataBaseSampler',  # mmdet3d's DataBaseSampler, skipping classes absent from the database
    data_root=_base_.data_root,
    info_path=_base_.data_root + 'nuscenes_dbinfos_train.pkl',
    rate=1.0,
    prepare=dict(
        filter_by_difficulty=[-1],
        filter_by_min_points=dict(
            car=5, truck=5, bus=5, trailer=5, construction_vehicle=5, traffic_cone=5, barrier=5, motorcycle=5,
            bicycle=5, pedestrian=5)),
    classes=_base_.dataset_classes,
    sample_groups=dict(
        car=2, truck=3, construction_vehicle=7, bus=4, trailer=6, barrier=2, motorcycle=6, bicycle=6, pedestrian=2,
        traffic_cone=2),
    points_loader=dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=[0, 1, 2, 3, 4]))


def _lidar_train_pipeline(steps, sampler):
    out = []
    for step in steps:
        if step['type'] in _camera_steps:
            continue
        out.append(dict(step, keys=['points', 'gt_bboxes_3d', 'gt_labels_3d'])
                   if step['type'] == 'Pack3DDetInputs' else step)
        if step['type'] == 'LoadAnnotations3D':  # paste database objects right after the labels are loaded
            out.append(dict(type='ObjectSample', db_sampler=sampler))
    return out


train_pipeline = _lidar_train_pipeline(_base_.train_pipeline, db_sampler)
test_pipeline = [
    dict(step, keys=['points', 'gt_bboxes_3d', 'gt_labels_3d']) if step['type'] == 'Pack3DDetInputs' else step
    for step in _base_.test_pipeline if step['type'] not in _camera_steps
]

train_dataloader = dict(
    dataset=dict(dataset=dict(dataset=dict(pipeline=train_pipeline, modality=input_modality))))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, modality=input_modality))
test_dataloader = val_dataloader
val_evaluator = dict(modality=input_modality)
test_evaluator = val_evaluator

gt_sampling_last_epochs = 5
custom_hooks = [dict(type='CLAPDisableObjectSampleHook', disable_after_epoch=20 - gt_sampling_last_epochs)]

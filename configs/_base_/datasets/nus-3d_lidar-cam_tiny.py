# The lidar-cam nuScenes data settings of nus-3d_lidar-cam.py for the small CPU model: the same pipelines
# with 128x352 images (half of BEVFusion's 256x704, same resize / crop / rotation ranges scaled by 1/2),
# batch size 2, no loader workers, no CBGS resampling. Point `data_root` at a synthetic set made with
# tools/create_synthetic_nuscenes.py + tools/create_data.py (`--cfg-options data_root=/path/`).
_base_ = ['./nus-3d_lidar-cam.py']

nus_version = 'v1.0-mini'  # synthetic sets use the official mini split
metainfo = dict(classes=_base_.dataset_classes, version=nus_version)
tiny_image_size = [128, 352]
train_image_aug = dict(final_dim=tiny_image_size, resize_lim=[0.19, 0.275], rot_lim=[-5.4, 5.4])
test_image_aug = dict(final_dim=tiny_image_size, resize_lim=[0.24, 0.24])

train_pipeline = [
    dict(step, **train_image_aug) if step['type'] == 'CLAPImageAug3D' else step
    for step in _base_.train_pipeline
]
test_pipeline = [
    dict(step, **test_image_aug) if step['type'] == 'CLAPImageAug3D' else step
    for step in _base_.test_pipeline
]

train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type=_base_.dataset_type,
        data_root=_base_.data_root,
        ann_file='nuscenes_infos_train.pkl',
        pipeline=train_pipeline,
        metainfo=metainfo,
        modality=_base_.input_modality,
        test_mode=False,
        data_prefix=_base_.data_prefix,
        use_valid_flag=True,
        box_type_3d='LiDAR',
        backend_args=_base_.backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=test_pipeline, metainfo=metainfo))
test_dataloader = val_dataloader

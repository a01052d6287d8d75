# LiDAR-only variant of bevfusion_lidar-cam_finetune_nus.py: the same detector without the camera branch
# (no img_backbone / img_neck / view_transform / fusion_layer; the LiDAR BEV goes straight into the SECOND
# backbone), LiDAR-only pipelines. A CLAP checkpoint's pts_voxel_encoder / pts_middle_encoder / pts_backbone /
# pts_neck weights load into it (the camera keys are reported as unexpected and ignored).
_base_ = ['./bevfusion_lidar-cam_finetune_nus.py']

input_modality = dict(use_lidar=True, use_camera=False)
_camera_steps = ('CLAPLoadMultiViewImageFromFiles', 'CLAPImageAug3D', 'CLAPGridMask')

model = dict(img_backbone=None, img_neck=None, view_transform=None, fusion_layer=None)

train_pipeline = [
    dict(step, keys=['points', 'gt_bboxes_3d', 'gt_labels_3d']) if step['type'] == 'Pack3DDetInputs' else step
    for step in _base_.train_pipeline if step['type'] not in _camera_steps
]
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

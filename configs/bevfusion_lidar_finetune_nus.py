# LiDAR-only variant of bevfusion_lidar-cam_finetune_nus.py: the same detector without the camera branch
# (no img_backbone / img_neck / view_transform / fusion_layer; the LiDAR BEV goes straight into the SECOND
# backbone), LiDAR-only pipelines, and GT sampling as in mmdet3d's LiDAR-only BEVFusion recipe: ObjectSample
# pastes objects from the database of tools/create_data.py (nuscenes_dbinfos_train.pkl,
# nuscenes_gt_database/) into the training scenes, and CLAPDisableObjectSampleHook turns it off for the last 5
# of the 20 epochs. A CLAP checkpoint's pts_voxel_encoder / pts_middle_encoder / pts_backbone / pts_neck weights
# load into it (tools/compose_checkpoint.py lidar-stage keeps exactly those). This is stage 1 of mmdet3d's
# two-stage recipe; stage 2 is bevfusion_lidar-cam_finetune_nus.py from tools/compose_checkpoint.py
# lidar-cam-stage (see README).
_base_ = ['./bevfusion_lidar-cam_finetune_nus.py', './_base_/datasets/nus-3d_gt-sampling.py']
from clap_plugin.datasets.lidar_only import lidar_only_settings  # noqa: E402

# the model without its camera branch, LiDAR-only pipelines with GT sampling, LiDAR-only loaders and evaluators
(input_modality, db_sampler, train_pipeline, test_pipeline, model, train_dataloader, val_dataloader, test_dataloader,
 val_evaluator, test_evaluator) = lidar_only_settings(
    _base_.train_pipeline, _base_.test_pipeline, _base_.db_sampler, _base_.data_root, _base_.dataset_classes,
    _base_.train_dataloader, _base_.val_dataloader)

gt_sampling_last_epochs = 5
custom_hooks = [dict(type='CLAPDisableObjectSampleHook', disable_after_epoch=20 - gt_sampling_last_epochs)]

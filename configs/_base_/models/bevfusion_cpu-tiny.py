# A small CPU variant of the BEVFusion lidar-cam model (same architecture as bevfusion_lidar-cam.py, narrower
# and coarser): narrow Swin, 128x352 images, 0.15 m voxels (720 x 720 x 41 sparse grid), 90 x 90 BEV at
# 1.2 m, 32-channel camera BEV, 128-channel LiDAR BEV, 256-channel fused BEV. For the demo and the tests:
# one forward+backward of one 6-camera sample takes a few seconds on CPU.
custom_imports = dict(imports=['clap_plugin'], allow_failed_imports=False)

point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
voxel_size = [0.15, 0.15, 0.2]
class_names = [
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle', 'bicycle',
    'pedestrian', 'traffic_cone'
]
image_size = [128, 352]

model = dict(
    type='CLAPBEVFusion',
    data_preprocessor=dict(
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    voxelize_cfg=dict(
        max_num_points=10,
        point_cloud_range=point_cloud_range,
        voxel_size=voxel_size,
        max_voxels=[60000, 80000],
        voxelize_reduce=True),
    img_backbone=dict(
        type='CLAPSwinTransformer',  # mmdet.SwinTransformer with an inert init_cfg (models/bevfusion/swin.py)
        embed_dims=32,
        depths=[1, 1, 2, 1],
        num_heads=[1, 2, 4, 8],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        patch_norm=True,
        out_indices=[1, 2, 3],
        with_cp=False,
        convert_weights=False,
        # random init; --cfg-options model.img_backbone.init_cfg.checkpoint=PATH loads a local file
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    img_neck=dict(
        type='CLAPGeneralizedLSSFPN',
        in_channels=[64, 128, 256],
        out_channels=64,
        start_level=0,
        num_outs=3,
        norm_cfg=dict(type='BN2d', requires_grad=True),
        act_cfg=dict(type='ReLU', inplace=True),
        upsample_cfg=dict(mode='bilinear', align_corners=False)),
    view_transform=dict(
        type='CLAPDepthLSSTransform',
        in_channels=64,
        out_channels=32,
        image_size=image_size,
        feature_size=[16, 44],
        xbound=[-54.0, 54.0, 0.6],
        ybound=[-54.0, 54.0, 0.6],
        zbound=[-10.0, 10.0, 20.0],
        dbound=[1.0, 60.0, 1.0],
        downsample=2),
    pts_voxel_encoder=dict(type='HardSimpleVFE', num_features=5),
    pts_middle_encoder=dict(
        type='CLAPSparseEncoder',
        in_channels=5,
        sparse_shape=[720, 720, 41],
        order=('conv', 'norm', 'act'),
        norm_cfg=dict(type='BN1d', eps=0.001, momentum=0.01),
        base_channels=8,
        output_channels=64,
        encoder_channels=((8, 8, 16), (16, 16, 32), (32, 32, 64), (64, 64)),
        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, (1, 1, 0)), (0, 0)),
        block_type='basicblock'),
    fusion_layer=dict(type='CLAPConvFuser', in_channels=[32, 128], out_channels=128),
    pts_backbone=dict(
        type='SECOND',
        in_channels=128,
        out_channels=[64, 128],
        layer_nums=[2, 2],
        layer_strides=[1, 2],
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.01),
        conv_cfg=dict(type='Conv2d', bias=False)),
    pts_neck=dict(
        type='SECONDFPN',
        in_channels=[64, 128],
        out_channels=[128, 128],
        upsample_strides=[1, 2],
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.01),
        upsample_cfg=dict(type='deconv', bias=False),
        use_conv_for_no_stride=True),
    bbox_head=dict(
        type='CLAPTransFusionHead',
        num_proposals=64,
        auxiliary=True,
        in_channels=256,
        hidden_channel=64,
        num_classes=10,
        nms_kernel_size=3,
        bn_momentum=0.1,
        num_decoder_layers=1,
        decoder_layer=dict(
            type='CLAPTransformerDecoderLayer',
            self_attn_cfg=dict(embed_dims=64, num_heads=4, dropout=0.1),
            cross_attn_cfg=dict(embed_dims=64, num_heads=4, dropout=0.1),
            ffn_cfg=dict(
                embed_dims=64,
                feedforward_channels=128,
                num_fcs=2,
                ffn_drop=0.1,
                act_cfg=dict(type='ReLU', inplace=True)),
            norm_cfg=dict(type='LN'),
            pos_encoding_cfg=dict(input_channel=2, num_pos_feats=64)),
        train_cfg=dict(
            dataset='nuScenes',
            point_cloud_range=point_cloud_range,
            grid_size=[720, 720, 41],
            voxel_size=voxel_size,
            out_size_factor=8,
            gaussian_overlap=0.1,
            min_radius=2,
            pos_weight=-1,
            code_weights=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2],
            assigner=dict(
                type='CLAPHungarianAssigner3D',
                iou_calculator=dict(type='CLAPBboxOverlaps3D'),
                cls_cost=dict(type='mmdet.FocalLossCost', gamma=2.0, alpha=0.25, weight=0.15),
                reg_cost=dict(type='CLAPBBoxBEVL1Cost', weight=0.25),
                iou_cost=dict(type='CLAPIoU3DCost', weight=0.25))),
        test_cfg=dict(
            dataset='nuScenes',
            grid_size=[720, 720, 41],
            out_size_factor=8,
            voxel_size=voxel_size[:2],
            pc_range=point_cloud_range[:2],
            nms_type=None),
        common_heads=dict(center=[2, 2], height=[1, 2], dim=[3, 2], rot=[2, 2], vel=[2, 2]),
        bbox_coder=dict(
            type='CLAPTransFusionBBoxCoder',
            pc_range=point_cloud_range[:2],
            post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
            score_threshold=0.0,
            out_size_factor=8,
            voxel_size=voxel_size[:2],
            code_size=10),
        loss_cls=dict(
            type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, reduction='mean',
            loss_weight=1.0),
        loss_heatmap=dict(type='mmdet.GaussianFocalLoss', reduction='mean', loss_weight=1.0),
        loss_bbox=dict(type='mmdet.L1Loss', reduction='mean', loss_weight=0.25)))

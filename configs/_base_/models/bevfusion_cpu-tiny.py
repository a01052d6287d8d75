# A small CPU variant of the BEVFusion lidar-cam model: the architecture of bevfusion_lidar-cam.py, narrower
# and coarser: narrow Swin, 128x352 images, 0.15 m voxels (720 x 720 x 41 sparse grid), 90 x 90 BEV at
# 1.2 m, 32-channel camera BEV, 128-channel LiDAR BEV, 256-channel fused BEV. For the demo and the tests:
# one forward+backward of one 6-camera sample takes a few seconds on CPU.
_base_ = ['./bevfusion_lidar-cam.py']

voxel_size = [0.15, 0.15, 0.2]
image_size = [128, 352]

model = dict(
    voxelize_cfg=dict(voxel_size=voxel_size, max_voxels=[60000, 80000]),
    img_backbone=dict(embed_dims=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8], drop_path_rate=0.1,
                      convert_weights=False),
    img_neck=dict(in_channels=[64, 128, 256], out_channels=64),
    view_transform=dict(in_channels=64, out_channels=32, image_size=image_size, feature_size=[16, 44],
                        xbound=[-54.0, 54.0, 0.6], ybound=[-54.0, 54.0, 0.6], dbound=[1.0, 60.0, 1.0]),
    pts_middle_encoder=dict(
        sparse_shape=[720, 720, 41],
        base_channels=8,
        output_channels=64,
        encoder_channels=((8, 8, 16), (16, 16, 32), (32, 32, 64), (64, 64))),
    fusion_layer=dict(in_channels=[32, 128], out_channels=128),
    pts_backbone=dict(in_channels=128, out_channels=[64, 128], layer_nums=[2, 2]),
    pts_neck=dict(in_channels=[64, 128], out_channels=[128, 128]),
    bbox_head=dict(
        num_proposals=64,
        in_channels=256,
        hidden_channel=64,
        decoder_layer=dict(
            self_attn_cfg=dict(embed_dims=64, num_heads=4),
            cross_attn_cfg=dict(embed_dims=64, num_heads=4),
            ffn_cfg=dict(embed_dims=64, feedforward_channels=128),
            pos_encoding_cfg=dict(num_pos_feats=64)),
        train_cfg=dict(grid_size=[720, 720, 41], voxel_size=voxel_size),
        test_cfg=dict(grid_size=[720, 720, 41], voxel_size=voxel_size[:2]),
        bbox_coder=dict(voxel_size=voxel_size[:2])))

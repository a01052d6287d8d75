# GT sampling for the LiDAR-only nuScenes fine-tune, as in mmdet3d's LiDAR-only BEVFusion recipe: ObjectSample
# pastes objects from the database of tools/create_data.py (nuscenes_dbinfos_train.pkl, nuscenes_gt_database/)
# into the training scenes. A config using it sets `db_sampler.data_root`, `.info_path` and `.classes` from its
# dataset base (one key cannot come from two bases).
db_sampler = dict(
    type='CLAPDataBaseSampler',  # mmdet3d's DataBaseSampler, skipping classes absent from the database
    rate=1.0,
    prepare=dict(
        filter_by_difficulty=[-1],
        filter_by_min_points=dict(
            car=5, truck=5, bus=5, trailer=5, construction_vehicle=5, traffic_cone=5, barrier=5, motorcycle=5,
            bicycle=5, pedestrian=5)),
    sample_groups=dict(
        car=2, truck=3, construction_vehicle=7, bus=4, trailer=6, barrier=2, motorcycle=6, bicycle=6, pedestrian=2,
        traffic_cone=2),
    points_loader=dict(type='CLAPLoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=[0, 1, 2, 3, 4]))

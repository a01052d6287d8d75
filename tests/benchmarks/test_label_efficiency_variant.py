"""The benchmark's model variants (a cheaper input, same parameters), its EMA validation and fine-tune fractions."""
import os.path as osp

import pytest
from mmengine.config import Config

from clap_plugin.benchmarks.label_efficiency import jobs as runners
from clap_plugin.benchmarks.label_efficiency.plan import RunPaths, build_plan
from clap_plugin.benchmarks.label_efficiency.setting import PRESETS, Setting
from clap_plugin.benchmarks.label_efficiency.variant import VARIANTS, ModelVariant, apply_variant

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FINETUNE = osp.join(ROOT, 'configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py')
PRETRAIN = osp.join(ROOT, 'configs/clap_pretrain_nus_cpu-tiny.py')


def _steps(pipeline, kind):
    return [s for s in pipeline if s['type'] == kind]


def test_bench_variant_rewrites_every_size_and_range_of_the_finetune_config():
    cfg = apply_variant(Config.fromfile(FINETUNE), VARIANTS['cpu-bench'])
    m = cfg.model
    pcr = [-32.4, -32.4, -5.0, 32.4, 32.4, 3.0]
    assert m.voxelize_cfg.point_cloud_range == pytest.approx(pcr)
    assert m.pts_middle_encoder.sparse_shape == [432, 432, 41]  # 64.8 m / 0.15 m, height kept
    assert m.bbox_head.train_cfg.grid_size == [432, 432, 41] and m.bbox_head.test_cfg.grid_size == [432, 432, 41]
    assert m.bbox_head.train_cfg.point_cloud_range == pytest.approx(pcr)
    assert m.bbox_head.test_cfg.pc_range == pytest.approx(pcr[:2]) and m.bbox_head.bbox_coder.pc_range == \
        pytest.approx(pcr[:2])
    assert m.view_transform.xbound == pytest.approx([-32.4, 32.4, 0.6]) and m.view_transform.ybound == \
        pytest.approx([-32.4, 32.4, 0.6])
    assert m.view_transform.image_size == [64, 192] and m.view_transform.feature_size == [8, 24]
    for pipeline in (cfg.train_dataloader.dataset.dataset.pipeline, cfg.val_dataloader.dataset.pipeline):
        assert [s['sweeps_num'] for s in _steps(pipeline, 'CLAPLoadPointsFromMultiSweeps')] == [0]
        assert [s['final_dim'] for s in _steps(pipeline, 'CLAPImageAug3D')] == [[64, 192]]
        assert all(s['point_cloud_range'] == pytest.approx(pcr) for s in _steps(pipeline, 'PointsRangeFilter'))
    # the test-time resize scales with the width: 0.24 * 192 / 352
    test_aug = _steps(cfg.val_dataloader.dataset.pipeline, 'CLAPImageAug3D')[0]
    assert test_aug['resize_lim'] == pytest.approx([0.24 * 192 / 352] * 2)
    assert cfg.val_evaluator.max_range == pytest.approx(32.4)


def test_fast_variant_makes_every_voxel_and_bev_cell_twice_as_large():
    cfg = apply_variant(Config.fromfile(FINETUNE), VARIANTS['cpu-fast'])
    m = cfg.model
    pcr = [-33.6, -33.6, -5.0, 33.6, 33.6, 3.0]
    assert m.voxelize_cfg.point_cloud_range == pytest.approx(pcr)
    assert m.voxelize_cfg.voxel_size == pytest.approx([0.3, 0.3, 0.2])  # height kept
    assert m.pts_middle_encoder.sparse_shape == [224, 224, 41]  # 67.2 m / 0.3 m
    for c in (m.bbox_head.train_cfg, m.bbox_head.test_cfg):
        assert c.grid_size == [224, 224, 41] and c.voxel_size[:2] == pytest.approx([0.3, 0.3])
    assert m.bbox_head.bbox_coder.voxel_size == pytest.approx([0.3, 0.3])
    assert m.view_transform.xbound == pytest.approx([-33.6, 33.6, 1.2])  # 56 cells, 28 after the 2x downsample
    # the set is generated at 400 x 225: the resize to the same crop is 4x that of a 1600-wide image
    test_aug = _steps(cfg.val_dataloader.dataset.pipeline, 'CLAPImageAug3D')[0]
    assert test_aug['resize_lim'] == pytest.approx([0.24 * 192 / 352 * 4] * 2)
    assert cfg.val_evaluator.max_range == pytest.approx(33.6)


def test_fast_variant_lidar_and_camera_maps_meet_on_one_grid(synthetic_nus):
    """The LiDAR BEV (sparse encoder, 8x down) and the camera BEV (LSS, 2x down) of the coarser variant have the
    same 28 x 28 cells, so the fuser concatenates them and the head's targets use that grid."""
    import torch
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules
    from mmengine.dataset import pseudo_collate

    from clap_plugin.benchmarks.label_efficiency.iteration_cost import _train_dataset
    register_all_modules(init_default_scope=True)
    import clap_plugin  # noqa: F401
    cfg = apply_variant(Config.fromfile(FINETUNE), VARIANTS['cpu-fast'])
    sample = _train_dataset(cfg, synthetic_nus + '/', 'v1.0-mini')[0]
    assert tuple(sample['inputs']['img'].shape[-2:]) == (64, 192)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    data = model.data_preprocessor(pseudo_collate([sample]), True)
    feats = model.extract_feat(data['inputs'], [s.metainfo for s in data['data_samples']])
    assert tuple(feats[0].shape[-2:]) == (28, 28)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert all(torch.isfinite(v).all() for k, v in losses.items() if k.startswith('loss'))


def test_fast_variant_generates_its_set_at_its_image_size(tmp_path):
    setting = Setting(variant='cpu-fast')
    generate, _ = runners.data_commands(setting, RunPaths(str(tmp_path)))
    i = generate.index('--image-size')
    assert generate[i + 1:i + 3] == [400, 225]
    assert '--image-size' not in runners.data_commands(Setting(variant='cpu-bench'), RunPaths(str(tmp_path)))[0]


def test_reused_set_of_another_image_size_is_refused(tmp_path):
    import cv2
    import numpy as np
    root = tmp_path / 'nus'
    (root / 'samples' / 'CAM_FRONT').mkdir(parents=True)
    for name in runners.INFO_FILES:
        (root / name).write_bytes(b'')
    cv2.imwrite(str(root / 'samples' / 'CAM_FRONT' / 'a.jpg'), np.zeros((900, 1600, 3), np.uint8))
    problems = runners.data_problems(Setting(variant='cpu-fast'), str(root))
    assert len(problems) == 1 and '1600 x 900' in problems[0] and '400 x 225' in problems[0]
    assert runners.data_problems(Setting(variant='cpu-bench'), str(root)) == []


def test_identity_variant_changes_nothing():
    cfg = Config.fromfile(FINETUNE)
    assert apply_variant(cfg, VARIANTS['cpu-tiny']).to_dict() == cfg.to_dict()


def test_bench_variant_reaches_the_pretraining_config():
    cfg = apply_variant(Config.fromfile(PRETRAIN), VARIANTS['cpu-bench'])
    # the rendering head and the masking read the range from the voxelisation (voxelize_cfg)
    assert cfg.model.voxelize_cfg.point_cloud_range == pytest.approx([-32.4, -32.4, -5.0, 32.4, 32.4, 3.0])
    assert cfg.model.view_transform.image_size == [64, 192]
    assert [s['final_dim'] for s in _steps(cfg.train_dataloader.dataset.pipeline, 'CLAPImageAug3D')] == [[64, 192]]


def test_variant_keeps_every_parameter_shape():
    """Learnt tensors keep their shapes: the rewrite touches inputs and grids only. The one state-dict entry that
    changes is the LSS frustum, a buffer computed from the image and feature sizes (every arm of a run is
    pre-trained and fine-tuned at the same variant, so exports always match the run's models)."""
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import clap_plugin  # noqa: F401
    base = Config.fromfile(FINETUNE)
    shapes = [{k: tuple(v.shape) for k, v in MODELS.build(c.model).state_dict().items()}
              for c in (base, apply_variant(base, VARIANTS['cpu-bench']), apply_variant(base, VARIANTS['cpu-fast']))]
    for other in shapes[1:]:
        assert set(shapes[0]) == set(other)
        changed = sorted(k for k in shapes[0] if shapes[0][k] != other[k])
        assert changed == ['view_transform.frustum']
        assert other['view_transform.frustum'] == (59, 8, 24, 3)


def test_variant_validation_names_the_bad_value():
    with pytest.raises(ValueError, match='W % 32'):
        ModelVariant('odd', image_size=(64, 180)).validate()
    with pytest.raises(ValueError, match='1.2 m BEV cells'):
        ModelVariant('odd', half_extent=31.0).validate()
    with pytest.raises(ValueError, match='2.4 m BEV cells'):  # 27 cells: SECOND's stride 2 needs an even count
        ModelVariant('odd', half_extent=32.4, cell_scale=2).validate()
    with pytest.raises(ValueError, match='16:9'):
        ModelVariant('odd', source_size=(400, 300)).validate()
    with pytest.raises(ValueError, match='unknown model variant'):
        Setting(variant='huge').validate()


def test_metric_clips_class_ranges_to_max_range():
    from clap_plugin.evaluation.nuscenes_metric import CLAPNuScenesMetric
    devkit = CLAPNuScenesMetric(data_root='/nonexistent/', ann_file='/nonexistent/x.pkl')
    clipped = CLAPNuScenesMetric(data_root='/nonexistent/', ann_file='/nonexistent/x.pkl', max_range=32.4)
    before, after = devkit.eval_detection_configs.class_range, clipped.eval_detection_configs.class_range
    assert before['car'] == 50 and after['car'] == pytest.approx(32.4)
    assert before['traffic_cone'] == 30 and after['traffic_cone'] == 30  # already inside
    with pytest.raises(ValueError, match='max_range'):
        CLAPNuScenesMetric(data_root='/nonexistent/', ann_file='/nonexistent/x.pkl', max_range=0)


def test_run_writes_its_variant_configs_with_the_ema_hook(tmp_path):
    setting = Setting(variant='cpu-bench', ema_momentum=0.01)
    paths = RunPaths(str(tmp_path))
    path = runners.write_finetune_config(setting, paths)
    assert path == osp.join(str(tmp_path), 'configs', 'finetune.py') and osp.isfile(path)
    cfg = Config.fromfile(path)
    assert cfg.model.view_transform.image_size == [64, 192]
    assert [h for h in cfg.custom_hooks if h['type'] == 'EMAHook'] == [runners.ema_hook(0.01)]
    plan = {j.id: j for j in build_plan(setting)}
    stage = runners.stage_config(plan['pretrain-clap'], setting, paths)
    assert stage == osp.join(str(tmp_path), 'configs', 'clap.py')
    assert Config.fromfile(stage).model.view_transform.image_size == [64, 192]
    # without a variant or EMA the run reads the repository's configs as they are
    plain = Setting()
    assert runners.write_finetune_config(plain, paths) == runners.FINETUNE_CONFIG
    assert runners.stage_config(plan['pretrain-clap'], plain, paths) == 'configs/clap_pretrain_nus_cpu-tiny.py'


def test_finetune_fractions_limit_the_finetune_jobs_not_the_probe():
    setting = Setting(fractions=(0.25, 0.5), finetune_fractions=(0.25, ), seeds=(0, 1))
    ids = [j.id for j in build_plan(setting)]
    assert 'finetune-scratch-f0.25-s1' in ids and not any(i.startswith('finetune-') and 'f0.5' in i for i in ids)
    with pytest.raises(ValueError, match='finetune_fractions'):
        Setting(fractions=(0.25, 0.5), finetune_fractions=(0.1, )).validate()


def test_default_preset_is_cheap_and_diverse():
    d = PRESETS['default']
    d.validate()
    assert d.variant == 'cpu-fast' and d.ema_momentum is not None
    assert min(d.fractions) <= 0.25 and len(d.fractions) >= 2 and len(d.seeds) >= 3
    assert d.train_scenes * d.samples_per_scene >= 4 * d.samples_per_scene * 10  # many distinct scenes
    assert d.val_scene_count * d.samples_per_scene >= 40


def test_probe_ladder_puts_scratch_first_and_every_other_probe_after_it():
    setting = Setting(probe_ladder=(100, 200, 400))
    plan = build_plan(setting)
    probes = [j for j in plan if j.kind == 'probe']
    assert probes[0].id == 'probe-scratch' and 'probe-scratch' not in probes[0].deps
    assert all('probe-scratch' in j.deps for j in probes[1:]) and len(probes) == 8
    # without a probe ladder the probes are independent (a fixed length)
    assert all('probe-scratch' not in j.deps for j in build_plan(Setting()) if j.kind == 'probe')
    for bad in (dict(probe_ladder=(200, 100)), dict(probe_ladder=(100, ), probe_arms=('clap', ))):
        with pytest.raises(ValueError, match='probe_ladder'):
            Setting(**bad).validate()


def test_bench_variant_loads_smaller_images_and_the_keyframe_points_only(synthetic_nus):
    from clap_plugin.benchmarks.label_efficiency.iteration_cost import _train_dataset
    tiny = Config.fromfile(FINETUNE)
    bench = apply_variant(tiny, VARIANTS['cpu-bench'])
    a = _train_dataset(tiny, synthetic_nus + '/', 'v1.0-mini')[0]
    b = _train_dataset(bench, synthetic_nus + '/', 'v1.0-mini')[0]
    assert tuple(a['inputs']['img'].shape[-2:]) == (128, 352) and tuple(b['inputs']['img'].shape[-2:]) == (64, 192)
    # keyframe + 2 sweeps against the keyframe alone, and a smaller range
    assert len(b['inputs']['points']) < 0.6 * len(a['inputs']['points'])
    assert b['inputs']['points'][:, :2].abs().max() <= 32.4


def test_iteration_cost_compares_variants_side_by_side(synthetic_nus):
    from clap_plugin.benchmarks.finetune_iteration import MODULES
    from clap_plugin.benchmarks.label_efficiency.iteration_cost import measure, to_markdown
    costs = measure(FINETUNE, synthetic_nus + '/', 'v1.0-mini', steps=(VARIANTS['cpu-tiny'], VARIANTS['cpu-bench']),
                    samples=2, iters=1)
    assert [c.name for c in costs] == ['cpu-tiny', 'cpu-bench'] and costs[0].speedup == 1.0
    assert costs[1].speedup == pytest.approx(costs[0].iteration / costs[1].iteration)
    assert all(c.iteration > 0 and set(c.forward) == set(MODULES) for c in costs)
    assert len(to_markdown(costs)) == 4


def test_configs_written_by_two_jobs_at_once_do_not_collide(tmp_path):
    """The ceiling and the ladder start together and both write the run's fine-tune config."""
    from concurrent.futures import ThreadPoolExecutor
    setting, paths = Setting(variant='cpu-bench', ema_momentum=0.01), RunPaths(str(tmp_path))
    with ThreadPoolExecutor(4) as pool:
        written = list(pool.map(lambda _: runners.write_finetune_config(setting, paths), range(8)))
    assert set(written) == {osp.join(str(tmp_path), 'configs', 'finetune.py')}
    assert Config.fromfile(written[0]).model.view_transform.image_size == [64, 192]
    assert sorted(p.name for p in (tmp_path / 'configs').iterdir()) == ['finetune.py']  # no temporary left


def test_dry_run_of_a_fresh_variant_run_builds_the_configs_it_will_write(tmp_path):
    """A run under a model variant reads configs it writes under OUT/configs; a dry run on a fresh directory builds
    stand-ins made by the same writers and still writes nothing."""
    from clap_plugin.benchmarks.label_efficiency.dry_run import dry_run
    printed = []
    setting = Setting(variant='cpu-fast', ema_momentum=0.01, ladder=(200, 400), fractions=(0.25, ), seeds=(0, ),
                      probe_arms=('scratch', ), finetune_arms=('scratch', 'clap'))
    out = tmp_path / 'fresh'
    assert dry_run(setting, RunPaths(str(out)), None, runners.Launch(), build_models=False,
                   out=printed.append) == 0, '\n'.join(printed)
    text = '\n'.join(printed)
    assert f'{osp.relpath(str(out), ROOT)}/configs/ladder.py: 1 (ladder)' in text
    assert 'configs/clap.py: 1 (pretrain-clap)' in text
    assert not out.exists()


def test_ladder_config_adds_the_stop_hook_to_the_finetune_config(tmp_path):
    setting = Setting(variant='cpu-fast', ema_momentum=0.01, ladder=(200, 400, 600))
    paths = RunPaths(str(tmp_path))
    cfg = Config.fromfile(runners.write_ladder_config(setting, paths))
    finetune = Config.fromfile(runners.write_finetune_config(setting, paths))
    assert cfg.custom_hooks[:-1] == finetune.custom_hooks
    assert cfg.custom_hooks[-1] == dict(type='SaturationStopHook', rungs=[200, 400, 600], gain=0.05)
    assert cfg.model.pts_middle_encoder.sparse_shape == [224, 224, 41]
    # a run without configs of its own keeps the repository's config (and no stop)
    assert runners.write_ladder_config(Setting(), paths) == runners.FINETUNE_CONFIG

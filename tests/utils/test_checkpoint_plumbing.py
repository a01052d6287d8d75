"""Merged and composed checkpoints keep `_metadata`, so every tensor of the file arrives unchanged in the
detector after load_from (mmdet3d's spconv 2 loader permutes sparse-conv kernels saved without it); the load
report names shape mismatches and permuted kernels; `model.img_backbone.init_cfg.checkpoint=PATH` works."""
import copy
import os.path as osp

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py')
CAMERA = ('img_backbone', 'img_neck', 'view_transform')
LIDAR = ('pts_voxel_encoder', 'pts_middle_encoder', 'pts_backbone', 'pts_neck')
LIDAR_TENSORS = LIDAR[1:]  # HardSimpleVFE has no parameters


def _cfg():
    from clap_plugin.apis import load_config
    return load_config(TINY)


def _lidar_only(model_cfg):
    m = copy.deepcopy(model_cfg)
    m.update(img_backbone=None, img_neck=None, view_transform=None, fusion_layer=None)
    return m


def _build(model_cfg, seed):
    from mmdet3d.registry import MODELS
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.init_weights()
    return model


def _perturbed_state(model, offset):
    """The model's state dict (with _metadata) with every float tensor moved, so it differs from any init."""
    state = model.state_dict()
    for k in state:
        state[k] = state[k].clone()
        if state[k].is_floating_point():
            state[k].add_(offset + 0.01 * torch.randn_like(state[k]))
    return state


def _load_like_load_from(model, path):
    from mmengine.runner import load_checkpoint
    load_checkpoint(model, path, map_location='cpu', strict=False, revise_keys=[(r'^module\.', '')])


@pytest.fixture(scope='module')
def halves(tmp_path_factory):
    """UniPAD-style halves: a LiDAR and a camera pre-training checkpoint of the tiny model (mmengine format)."""
    cfg = _cfg()
    model = _build(cfg.model, 0)
    tmp = tmp_path_factory.mktemp('halves')
    lidar_state = _perturbed_state(model, 0.5)
    camera_state = _perturbed_state(model, -0.5)
    lidar, camera = str(tmp / 'lidar.pth'), str(tmp / 'camera.pth')
    torch.save(dict(meta=dict(epoch=1), state_dict=lidar_state, optimizer={}), lidar)
    torch.save(dict(meta=dict(epoch=1), state_dict=camera_state, optimizer={}), camera)
    return cfg, lidar, camera, lidar_state, camera_state


def test_merge_keeps_metadata_and_every_tensor_arrives_unchanged(halves, tmp_path):
    from clap_plugin.apis import merge_pretrained
    from clap_plugin.utils.state_dicts import compare_loaded, load_state_dict
    cfg, lidar, camera, lidar_state, camera_state = halves
    out = str(tmp_path / 'merged.pth')
    assert merge_pretrained.main([lidar, camera, out]) == 0
    merged, _ = load_state_dict(out)
    assert merged._metadata['pts_middle_encoder.conv_input.0']['version'] == 2
    assert {k.split('.', 1)[0] for k in merged} == set(LIDAR_TENSORS + CAMERA)
    for k, v in merged.items():
        src = lidar_state if k.split('.', 1)[0] in LIDAR else camera_state
        assert torch.equal(v, src[k]), k
    model = _build(cfg.model, 1)
    _load_like_load_from(model, out)
    report = compare_loaded(model.state_dict(), merged, name=out)
    assert report.ok, report.details()
    assert len(report.unchanged) == len(merged)
    assert all(k.split('.', 1)[0] in ('fusion_layer', 'bbox_head') for k in report.missing)
    # every tensor of the file, compared directly with the model
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in merged.items())


def test_a_merge_without_metadata_is_reported_as_permuted(halves, tmp_path):
    """What the old merge produced: a plain dict. The report finds the scrambled sparse-conv kernels."""
    from clap_plugin.utils.state_dicts import compare_loaded, load_state_dict, save_checkpoint
    cfg, lidar, _, lidar_state, _ = halves
    plain = {k: v for k, v in lidar_state.items() if k.startswith('pts_')}
    path = str(tmp_path / 'plain.pth')
    save_checkpoint(path, plain)
    source, _ = load_state_dict(path)
    assert getattr(source, '_metadata', None) is None
    model = _build(cfg.model, 1)
    _load_like_load_from(model, path)
    report = compare_loaded(model.state_dict(), source, name=path)
    assert not report.ok
    kernels = [k for k, v in plain.items() if v.dim() == 5]
    assert kernels and sorted(report.permuted) == sorted(kernels)
    assert any('no _metadata' in line for line in report.details())
    # shape mismatches are named with both shapes
    bad = dict(plain)
    bad['pts_neck.deblocks.0.0.weight'] = torch.zeros(3, 3)
    report = compare_loaded(model.state_dict(), bad)
    assert [k for k, _, _ in report.shape_mismatch] == ['pts_neck.deblocks.0.0.weight']
    assert '(3, 3) vs' in report.details()[0]


def test_combine_refuses_to_drop_the_versions_of_sparse_kernels(halves):
    from clap_plugin.utils.state_dicts import CheckpointError, combine, select
    _, _, _, lidar_state, camera_state = halves
    bare = {k: v for k, v in lidar_state.items() if k.startswith('pts_')}
    with pytest.raises(CheckpointError, match='no _metadata.*pts_middle_encoder'):
        combine([bare, select(camera_state, CAMERA)])


@pytest.fixture(scope='module')
def two_stage(halves, tmp_path_factory):
    """The upstream two-stage recipe: stage 1 (LiDAR-only) from the LiDAR encoders, stage 2 from the stage-1
    detector plus the camera encoders."""
    from clap_plugin.apis import compose_checkpoint
    cfg, pretrained, _, pre_state, _ = halves
    tmp = tmp_path_factory.mktemp('two_stage')
    stage1_init = str(tmp / 'stage1_init.pth')
    compose_checkpoint.main(['lidar-stage', pretrained, stage1_init])
    # a trained stage-1 detector: LiDAR-only model with its head, saved the way mmengine does
    lidar_model = _build(_lidar_only(cfg.model), 2)
    stage1_state = _perturbed_state(lidar_model, 0.25)
    stage1 = str(tmp / 'epoch_20.pth')
    torch.save(dict(meta=dict(epoch=20), state_dict=stage1_state, optimizer=dict(state={}, param_groups=[])),
               stage1)
    stage2_init = str(tmp / 'stage2_init.pth')
    compose_checkpoint.main(['lidar-cam-stage', stage1, pretrained, stage2_init])
    return cfg, pre_state, stage1_init, stage1_state, stage2_init


def test_lidar_stage_loads_unchanged_into_the_lidar_only_detector(two_stage):
    from clap_plugin.utils.state_dicts import compare_loaded, load_state_dict
    cfg, pre_state, stage1_init, _, _ = two_stage
    source, _ = load_state_dict(stage1_init)
    assert {k.split('.', 1)[0] for k in source} == set(LIDAR_TENSORS)
    assert all(torch.equal(v, pre_state[k]) for k, v in source.items())
    model = _build(_lidar_only(cfg.model), 3)
    _load_like_load_from(model, stage1_init)
    report = compare_loaded(model.state_dict(), source)
    assert report.ok and len(report.unchanged) == len(source), report.details()
    assert {k.split('.', 1)[0] for k in report.missing} == {'bbox_head'}


def test_lidar_cam_stage_is_stage1_plus_pretrained_camera(two_stage):
    from clap_plugin.utils.state_dicts import compare_loaded, load_state_dict
    cfg, pre_state, _, stage1_state, stage2_init = two_stage
    source, meta = load_state_dict(stage2_init)
    assert source._metadata['pts_middle_encoder.conv_input.0']['version'] == 2
    for k, v in source.items():
        expected = pre_state if k.split('.', 1)[0] in CAMERA else stage1_state
        assert torch.equal(v, expected[k]), k
    assert {k.split('.', 1)[0] for k in source} == set(LIDAR_TENSORS + CAMERA + ('bbox_head', ))
    model = _build(cfg.model, 4)
    _load_like_load_from(model, stage2_init)
    report = compare_loaded(model.state_dict(), source)
    assert report.ok and len(report.unchanged) == len(source), report.details()
    assert {k.split('.', 1)[0] for k in report.missing} == {'fusion_layer'}  # from its init, as upstream
    assert meta['composed'] == 'lidar-cam-stage'


def test_compose_errors_name_the_file(two_stage, tmp_path):
    from clap_plugin.apis import compose_checkpoint
    _, _, stage1_init, _, _ = two_stage
    with pytest.raises(SystemExit, match="is not a LiDAR-only detector checkpoint: no \\['bbox_head'\\]"):
        compose_checkpoint.main(['lidar-cam-stage', stage1_init, stage1_init, str(tmp_path / 'x.pth')])
    stage1 = osp.join(osp.dirname(stage1_init), 'epoch_20.pth')
    with pytest.raises(SystemExit, match="has no \\['img_backbone', 'img_neck', 'view_transform'\\] weights"):
        compose_checkpoint.main(['lidar-cam-stage', stage1, stage1_init, str(tmp_path / 'y.pth')])
    assert not osp.exists(tmp_path / 'x.pth') and not osp.exists(tmp_path / 'y.pth')


def test_load_from_through_train_py_reports_every_tensor(two_stage, synthetic_nus, tmp_path):
    """tools/train.py adds CheckpointLoadReportHook: the composed stage-2 file arrives unchanged."""
    from clap_plugin.apis import train
    from clap_plugin.utils.state_dicts import load_state_dict
    _, _, _, _, stage2_init = two_stage
    runner = train.main([TINY, '--work-dir', str(tmp_path), '--cfg-options', f'data_root={synthetic_nus}',
                         f'load_from={stage2_init}', 'train_cfg.max_iters=1', 'val_cfg=None',
                         'val_dataloader=None', 'val_evaluator=None', 'default_hooks.checkpoint.interval=10'])
    hook = next(h for h in runner.hooks if type(h).__name__ == 'CheckpointLoadReportHook')
    source, _ = load_state_dict(stage2_init)
    assert hook.report is not None and hook.report.ok, hook.report.details()
    assert len(hook.report.unchanged) == len(source)


def test_img_backbone_init_cfg_checkpoint_from_the_command_line(halves, tmp_path):
    from mmdet3d.registry import MODELS

    from clap_plugin.apis import train
    cfg0, _, camera, _, camera_state = halves
    assert cfg0.model.img_backbone.init_cfg == dict(type='Pretrained', checkpoint=None)  # inert by default
    model = _build(cfg0.model, 5)  # no file, no download: the random init
    assert not torch.equal(model.img_backbone.state_dict()['patch_embed.projection.weight'],
                           camera_state['img_backbone.patch_embed.projection.weight'])
    args = train.parse_args([TINY, '--cfg-options', f'model.img_backbone.init_cfg.checkpoint={camera}'])
    cfg = train.build_train_cfg(args)
    assert cfg.model.img_backbone.init_cfg.checkpoint == camera
    torch.manual_seed(6)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for k, v in model.img_backbone.state_dict().items():
        assert torch.equal(v, camera_state['img_backbone.' + k]), k
    # a URL is refused (nothing is downloaded), a missing file is named
    for value, error in (('https://example.org/swin.pth', ValueError), (str(tmp_path / 'none.pth'),
                                                                          FileNotFoundError)):
        m = copy.deepcopy(cfg0.model)
        m.img_backbone.init_cfg.checkpoint = value
        with pytest.raises(error, match='img_backbone.init_cfg.checkpoint'):
            MODELS.build(m).init_weights()

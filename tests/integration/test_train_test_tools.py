"""tools/train.py and tools/test.py on the synthetic fixture: a 2-iteration fine-tune of the CPU config,
evaluation with NuScenesMetric, --resume, clear errors."""
import glob
import os.path as osp

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py')
METRIC = 'NuScenes metric/pred_instances_3d_NuScenes/'


def _test_tool():
    """The library side of tools/test.py."""
    from clap_plugin.apis import test
    return test


def _options(root, iters):
    # no validation inside training: tools/test.py evaluates the checkpoint below
    return ['--cfg-options', f'data_root={root}', f'train_cfg.max_iters={iters}', 'val_cfg=None',
            'val_dataloader=None', 'val_evaluator=None',
            'randomness.seed=0', 'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1']


@pytest.fixture(scope='module')
def trained(synthetic_nus, tmp_path_factory):
    from clap_plugin.apis import train
    work_dir = str(tmp_path_factory.mktemp('finetune_tiny'))
    runner = train.main([TINY, '--work-dir', work_dir] + _options(synthetic_nus, 2))
    return runner, work_dir


def test_train_runs_and_saves(trained):
    runner, work_dir = trained
    assert runner.iter == 2
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    ckpt = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu')  # torch>=2.6 safe loader
    assert ckpt['meta']['iter'] == 2 and 'optimizer' in ckpt
    keys = {k.split('.', 1)[0] for k in ckpt['state_dict']}
    assert {'img_backbone', 'view_transform', 'pts_middle_encoder', 'fusion_layer', 'bbox_head'} <= keys
    # the loss was finite and logged
    scalars = runner.message_hub.log_scalars
    assert 'train/loss' in scalars and torch.isfinite(torch.tensor(scalars['train/loss'].current()))
    # the training set went through the label-fraction wrapper (fraction 1.0 keeps every sample)
    ds = runner.train_dataloader.dataset
    assert type(ds).__name__ == 'LabelFractionDataset' and len(ds) == len(ds.dataset)


def test_test_tool_evaluates_with_nuscenes_metric(trained, synthetic_nus):
    test_tool = _test_tool()
    _, work_dir = trained
    metrics = test_tool.main([TINY, osp.join(work_dir, 'iter_2.pth'), '--work-dir', osp.join(work_dir, 'eval'),
                              '--cfg-options', f'data_root={synthetic_nus}'])
    for key in ('mAP', 'NDS', 'mATE', 'car_AP_dist_2.0'):
        assert METRIC + key in metrics, sorted(metrics)[:5]
    assert 0.0 <= metrics[METRIC + 'mAP'] <= 1.0 and 0.0 <= metrics[METRIC + 'NDS'] <= 1.0


def test_resume_continues_from_the_latest_checkpoint(trained, synthetic_nus):
    from clap_plugin.apis import train
    runner0, work_dir = trained
    runner = train.main([TINY, '--work-dir', work_dir, '--resume'] + _options(synthetic_nus, 3))
    assert runner.iter == 3 and osp.isfile(osp.join(work_dir, 'iter_3.pth'))
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    assert any('Resumed' in open(p).read() or 'resumed' in open(p).read() for p in logs[-1:])
    # the optimizer state came back: AdamW step counts continue from 2
    state = runner.optim_wrapper.optimizer.state_dict()['state']
    steps = {int(v['step']) for v in state.values() if 'step' in v}
    assert steps == {3}


def test_missing_files_give_clear_errors(tmp_path):
    test_tool = _test_tool()
    from clap_plugin.apis import train
    with pytest.raises(SystemExit, match='does not exist'):
        train.main([str(tmp_path / 'nope.py')])
    with pytest.raises(SystemExit, match='does not exist'):
        train.main([TINY, '--resume', str(tmp_path / 'nope.pth')])
    with pytest.raises(SystemExit, match='does not exist'):
        test_tool.main([TINY, str(tmp_path / 'nope.pth')])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='--amp needs a GPU'):
            train.main([TINY, '--amp'])
    # --show-dir turns the visualisation hook on (mmdet3d draws with open3d: a clear error without it)
    from mmengine.config import Config
    cfg = Config(dict(default_hooks=dict(visualization=dict(type='Det3DVisualizationHook'))))
    import importlib.util
    if importlib.util.find_spec('open3d') is None:
        with pytest.raises(SystemExit, match='open3d'):
            test_tool.enable_visualization(cfg, 'vis', 0.2, 'multi-view_det')
    else:
        test_tool.enable_visualization(cfg, 'vis', 0.2, 'multi-view_det')
        vis = cfg.default_hooks.visualization
        assert vis.draw and vis.test_out_dir == 'vis' and vis.vis_task == 'multi-view_det'

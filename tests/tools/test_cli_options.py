"""Every documented option of tools/train.py and tools/test.py, on a pre-training and on a fine-tuning config:
it applies, or exits / warns with one line saying why it does not. Runs are stopped after one epoch or
iteration on the session's synthetic set."""
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRETRAIN = osp.join(REPO, 'configs/clap_pretrain_nus_cpu-tiny.py')
FINETUNE = osp.join(REPO, 'configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py')


def _test_tool():
    """The library side of tools/test.py."""
    from clap_plugin.apis import test
    return test


def _one_line(err) -> str:
    text = str(err.value)
    assert text.startswith('error: ') and '\n' not in text, text
    return text


def _cfg(argv):
    from clap_plugin.apis import train
    return train.build_train_cfg(train.parse_args(argv))


@pytest.fixture(scope='module')
def pretrained(synthetic_nus, tmp_path_factory):
    """The command of the issue: a pre-training config with data_root and nus_version (no val loader)."""
    from clap_plugin.apis import train
    work = str(tmp_path_factory.mktemp('pre_cli'))
    runner = train.main([PRETRAIN, '--work-dir', work, '--cfg-options', f'data_root={synthetic_nus}/',
                         'nus_version=v1.0-trainval', 'train_cfg.max_epochs=1'])
    return runner, work


def test_pretrain_with_data_root_and_nus_version_trains(pretrained):
    runner, work = pretrained
    assert runner.epoch == 1 and osp.isfile(osp.join(work, 'epoch_1.pth'))


def test_pretrain_resume_continues_and_reports_the_load(pretrained, synthetic_nus):
    from clap_plugin.apis import train
    _, work = pretrained
    runner = train.main([PRETRAIN, '--work-dir', work, '--resume', '--cfg-options', f'data_root={synthetic_nus}/',
                         'train_cfg.max_epochs=2'])
    assert runner.epoch == 2
    hook = next(h for h in runner.hooks if type(h).__name__ == 'CheckpointLoadReportHook')
    assert hook.report is not None and hook.report.ok and hook.report.source.endswith('epoch_1.pth')
    assert not hook.report.missing


@pytest.mark.parametrize('config', [PRETRAIN, FINETUNE])
def test_options_that_need_something_say_so_in_one_line(config, synthetic_nus, tmp_path):
    from clap_plugin.apis import train
    base = [config, '--work-dir', str(tmp_path), '--cfg-options', f'data_root={synthetic_nus}/']
    # --work-dir
    assert _cfg(base).work_dir == str(tmp_path)
    # --amp: applies on a GPU; on this CPU machine one line says why not
    with pytest.raises(SystemExit, match='--amp needs a GPU') as err:
        _cfg([config, '--amp'])
    _one_line(err)
    # --auto-scale-lr: applies where the config has a base batch size
    if config == FINETUNE:
        assert _cfg(base + ['--auto-scale-lr']).auto_scale_lr.enable is True
    else:
        with pytest.raises(SystemExit, match='auto_scale_lr.base_batch_size') as err:
            _cfg(base[:3] + ['--auto-scale-lr'])
        _one_line(err)
    # --resume PATH: a missing file is named
    with pytest.raises(SystemExit, match='does not exist') as err:
        _cfg([config, '--resume', str(tmp_path / 'none.pth')])
    _one_line(err)
    # --cfg-options label_fraction: only fine-tuning configs have the wrapper
    if config == FINETUNE:
        cfg = _cfg(base + ['label_fraction=0.5', 'label_fraction_seed=3'])
        assert cfg.train_dataloader.dataset.fraction == 0.5 and cfg.train_dataloader.dataset.seed == 3
    else:
        with pytest.raises(SystemExit, match='no LabelFractionDataset') as err:
            _cfg(base + ['label_fraction=0.5'])
        _one_line(err)
    # --cfg-options nus_version: sets the evaluated split, or says it changes nothing (no evaluator)
    cfg = _cfg(base + ['nus_version=v1.0-trainval'])
    if config == FINETUNE:
        assert cfg.val_dataloader.dataset.metainfo.version == 'v1.0-trainval'
    with pytest.raises(SystemExit, match="nus_version='v2'") as err:
        _cfg(base + ['nus_version=v2'])
    _one_line(err)
    # --launcher pytorch outside torchrun
    with pytest.raises(SystemExit, match='needs the environment variables') as err:
        train.main(base + ['--launcher', 'pytorch'])
    _one_line(err)


@pytest.mark.parametrize('config', [PRETRAIN, FINETUNE])
def test_missing_info_file_names_it_and_the_create_data_command(config, tmp_path):
    from clap_plugin.apis import train
    root = tmp_path / 'nus'
    (root / 'v1.0-mini').mkdir(parents=True)  # tables present, info files not made yet
    with pytest.raises(SystemExit) as err:
        train.main([config, '--work-dir', str(tmp_path / 'w'), '--cfg-options', f'data_root={root}/'])
    text = _one_line(err)
    assert f"'{root}/nuscenes_infos_train.pkl' does not exist" in text
    assert (f'python tools/create_data.py nuscenes --root-path {root}/ --out-dir {root} --extra-tag nuscenes '
            '--version v1.0-mini') in text


def test_test_tool_options(synthetic_nus, tmp_path, capsys):
    """tools/test.py: a pre-training config is refused in one line; on a fine-tune checkpoint --work-dir,
    --cfg-options and --score-thr / --task (which only change --show-dir pictures) apply or say why not."""
    from clap_plugin.apis import train
    test_tool = _test_tool()
    work = str(tmp_path / 'ft')
    train.main([FINETUNE, '--work-dir', work, '--cfg-options', f'data_root={synthetic_nus}/', 'train_cfg.max_iters=1',
                'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None', 'default_hooks.checkpoint.interval=1'])
    ckpt = osp.join(work, 'iter_1.pth')
    with pytest.raises(SystemExit, match='not an evaluation config') as err:
        test_tool.main([PRETRAIN, ckpt, '--cfg-options', f'data_root={synthetic_nus}/'])
    _one_line(err)
    with pytest.raises(SystemExit, match='does not exist') as err:
        test_tool.main([FINETUNE, str(tmp_path / 'none.pth')])
    _one_line(err)
    with pytest.raises(SystemExit, match='needs the environment variables') as err:
        test_tool.main([FINETUNE, ckpt, '--launcher', 'pytorch', '--cfg-options', f'data_root={synthetic_nus}/'])
    _one_line(err)
    capsys.readouterr()
    metrics = test_tool.main([FINETUNE, ckpt, '--work-dir', str(tmp_path / 'eval'), '--score-thr', '0.3',
                              '--task', 'lidar_det', '--cfg-options', f'data_root={synthetic_nus}/',
                              'nus_version=v1.0-mini'])
    assert any(k.endswith('NDS') for k in metrics)
    assert 'only change the --show-dir pictures' in capsys.readouterr().err
    import importlib.util
    if importlib.util.find_spec('open3d') is None:
        with pytest.raises(SystemExit, match='--show-dir needs open3d') as err:
            test_tool.main([FINETUNE, ckpt, '--show-dir', 'vis', '--cfg-options', f'data_root={synthetic_nus}/'])
        _one_line(err)

"""The paper preset of the label-efficiency benchmark: its plan (arms, fractions, full-size configs, dist_train
commands with the GPU count), its refusals (no --data-root, no teacher, several workers), its ladder in epochs, and
``--dry-run`` (prints every job with its commands and builds every config, writing nothing)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from clap_plugin.benchmarks.label_efficiency import ARMS, PRESETS, Setting
from clap_plugin.benchmarks.label_efficiency import jobs as runners
from clap_plugin.benchmarks.label_efficiency.dry_run import build_configs, job_lines, templated, train_argv
from clap_plugin.benchmarks.label_efficiency.plan import RunPaths, build_plan, by_id
from clap_plugin.benchmarks.label_efficiency.report import render_markdown, summary_json

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TOOL = osp.join(ROOT, 'tools', 'benchmarks', 'label_efficiency.py')
FINETUNE = 'configs/bevfusion_lidar-cam_finetune_nus.py'
# written out here, not read from arms.py: a wrong mapping there must fail
PAPER_PRETRAIN = {
    'unipad_lidar': 'configs/ablations/unipad_lidar_pretrain_nus.py',
    'unipad_camera': 'configs/ablations/unipad_camera_pretrain_nus.py',
    'joint_uniform': 'configs/ablations/clap_ablation_joint-uniform_nus.py',
    'joint_curvature': 'configs/ablations/clap_ablation_joint-curvature_nus.py',
    'clap': 'configs/clap_pretrain_nus.py',
    'ppkt': 'projects/PPKT/configs/ppkt_pretrain_nus.py',
    'simipu': 'projects/SimIPU/configs/simipu_pretrain_nus.py',
    'cmcr': 'projects/CMCR/configs/cmcr_pretrain_nus.py',
}
ENCODERS = dict(unipad='unipad', joint_uniform='joint_uniform', joint_curvature='joint_curvature', clap='clap',
                ppkt='ppkt', simipu='simipu', cmcr='cmcr')


def load_tool():
    """The tool's logic (``tools/benchmarks/label_efficiency.py`` is its thin entry point)."""
    from clap_plugin.benchmarks.label_efficiency import cli
    return cli


def opts_of(cmd):
    """``--cfg-options`` of a tool command as a dict."""
    args = [str(a) for a in cmd]
    return dict(o.split('=', 1) for o in args[args.index('--cfg-options') + 1:])


@pytest.fixture
def fake_root(tmp_path):
    root = tmp_path / 'nus'
    root.mkdir()
    teacher = tmp_path / 'teacher.pth'
    teacher.write_bytes(b'not a real checkpoint')
    return str(root), str(teacher)


# ------------------------------------------------------------------------------------------------ plan
def test_paper_preset_setting_and_plan():
    paper = PRESETS['paper']
    paper.validate()
    assert (paper.protocol, paper.paper, paper.unit) == ('paper', True, 'epochs')
    assert paper.fractions == (0.05, ) and paper.pretrain_epochs == 12 and paper.ladder == (5, 10, 15, 20)
    assert paper.finetune_arms == tuple(ARMS) and paper.probe_arms == () and len(paper.seeds) >= 3
    plan = build_plan(paper)
    kinds = {j.kind for j in plan}
    assert kinds == {'data', 'teacher', 'pretrain', 'merge', 'ladder', 'finetune'}  # no ceiling, probe, pretext
    assert {j.stage for j in plan if j.kind == 'pretrain'} == set(PAPER_PRETRAIN)
    fine = [j for j in plan if j.kind == 'finetune']
    assert len(fine) == len(ARMS) * 1 * len(paper.seeds) and {j.fraction for j in fine} == {0.05}
    assert by_id(plan)['ladder'].fraction == 0.05 and all('ladder' in j.deps for j in fine)
    # the CPU presets keep their ceiling and pretext jobs
    assert {'ceiling', 'pretext', 'probe'} <= {j.kind for j in build_plan(PRESETS['default'])}


def test_every_stage_names_its_full_size_config_and_the_protocols_differ():
    for stage in (s for a in ARMS.values() for s in a.stages):
        assert stage.config_of('paper') == PAPER_PRETRAIN[stage.name]
        assert osp.isfile(osp.join(ROOT, stage.config_of('paper')))
        assert stage.config_of('cpu-tiny') == stage.config and stage.config.endswith('_cpu-tiny.py')
    assert runners.finetune_config('paper') == FINETUNE and osp.isfile(osp.join(ROOT, FINETUNE))
    assert runners.finetune_config('cpu-tiny') == runners.FINETUNE_CONFIG
    with pytest.raises(ValueError, match='protocol'):
        runners.finetune_config('gpu-huge')


def test_paper_commands_go_through_dist_train_with_the_full_size_configs(tmp_path):
    setting = PRESETS['paper']
    paths = RunPaths(str(tmp_path / 'run'))
    data = runners.data_location(setting, paths, str(tmp_path))
    assert data['version'] == 'v1.0-trainval' and data['data_root'] == str(tmp_path) + '/'
    launch = runners.default_launch(setting, 4)
    plan = by_id(build_plan(setting))
    for stage, config in PAPER_PRETRAIN.items():
        job = plan[f'pretrain-{stage}']
        cmd = runners.pretrain_command(job, setting, paths, data, launch)
        assert cmd[:3] == ['tools/dist_train.sh', config, '4'] and '--auto-scale-lr' in cmd
        assert cmd[cmd.index('--work-dir') + 1] == paths.work(job.id)
        opts = opts_of(cmd)
        assert opts['data_root'] == data['data_root'] and opts['train_cfg.max_epochs'] == '12'
        assert ('model.teacher_checkpoint' in opts) == (stage in ('ppkt', 'cmcr'))
        export = runners.export_command(job, setting, paths, data)
        assert export[0] == 'tools/export_pretrained.py' and export[1].endswith(f'pretrain-{stage}/epoch_12.pth')
        assert export[export.index('--bn-batches') + 1] == 64 and export[2] == paths.encoders(stage)
    ladder = runners.ladder_command(plan['ladder'], setting, paths, data, launch)
    assert ladder[:3] == ['tools/dist_train.sh', FINETUNE, '4']
    opts = opts_of(ladder)
    assert (opts['train_cfg.max_epochs'], opts['train_cfg.val_interval']) == ('20', '5')
    assert (opts['label_fraction'], opts['nus_version']) == ('0.05', 'v1.0-trainval') and 'load_from' not in opts
    # BEVFusion's schedule as the config has it: no iteration count, no scheduler or cache overrides
    assert not [k for k in opts if k.startswith(('param_scheduler', 'train_cfg.max_iters')) or 'cache_bytes' in k]
    for arm in ARMS:
        cmd = runners.finetune_command(plan[f'finetune-{arm}-f0.05-s1'], setting, paths, data, launch, 15,
                                       runners.encoder_file(paths, arm))
        opts = opts_of(cmd)
        assert cmd[:3] == ['tools/dist_train.sh', FINETUNE, '4']
        assert (opts['train_cfg.max_epochs'], opts['train_cfg.val_interval'], opts['label_fraction_seed']) == (
            '15', '15', '1')
        assert opts.get('load_from') == (None if arm == 'scratch' else paths.encoders(ENCODERS[arm]))
    assert runners.tool_command(ladder)[:2] == ['bash', 'tools/dist_train.sh']
    with pytest.raises(runners.JobError, match='ends at epoch 20'):
        runners.finetune_command(plan['finetune-clap-f0.05-s0'], setting, paths, data, launch, 21, None)


def test_launch_defaults_and_the_cpu_protocol_is_unchanged(tmp_path):
    assert runners.default_launch(PRESETS['paper']).gpus == 8
    assert runners.default_launch(PRESETS['default']) == runners.Launch()
    with pytest.raises(ValueError, match='--gpus'):
        runners.default_launch(PRESETS['default'], 8)
    with pytest.raises(ValueError, match='--gpus'):
        runners.default_launch(PRESETS['paper'], 0)
    setting, paths = PRESETS['tiny'], RunPaths(str(tmp_path))
    data = runners.data_location(setting, paths)
    cmd = runners.ladder_command(by_id(build_plan(setting))['ladder'], setting, paths, data, runners.Launch())
    assert cmd[:2] == ['tools/train.py', runners.FINETUNE_CONFIG] and opts_of(cmd)['train_cfg.max_iters'] == '80'
    assert runners.tool_command(cmd)[:2] == [sys.executable, 'tools/train.py']


def test_fractions_option_and_identity_of_the_protocol():
    tool = load_tool()
    args = tool.parse_args(['--preset', 'paper', '--fractions', '0.05', '0.025', '0.01', '0.005'])
    setting = tool.make_setting(args)
    fine = [j for j in build_plan(setting) if j.kind == 'finetune']
    assert {j.fraction for j in fine} == {0.05, 0.025, 0.01, 0.005} and len(fine) == 4 * len(ARMS) * 3
    assert setting.ladder_fraction == 0.05
    assert 'protocol: cpu-tiny -> paper' in Setting().identity_diff(PRESETS['paper'])
    legacy = {k: v for k, v in Setting().to_json().items() if k not in ('protocol', 'export_bn_batches')}
    assert Setting.from_json(legacy) == Setting()  # a run made before the fields: cpu-tiny, every sample
    with pytest.raises(ValueError, match='probe'):
        Setting(protocol='paper', probe_arms=('clap', )).validate()
    with pytest.raises(SystemExit, match='--probe-arms'):
        tool.make_setting(tool.parse_args(['--preset', 'paper', '--probe-arms', 'clap']))


# ------------------------------------------------------------------------------------------------ refusals
def test_paper_refuses_without_data_root_and_other_bad_arguments(fake_root, tmp_path):
    tool = load_tool()
    root, teacher = fake_root
    out = str(tmp_path / 'out')
    for extra in ([], ['--dry-run']):
        with pytest.raises(SystemExit, match='--data-root') as err:
            tool.main(['--preset', 'paper', '--out', out, '--teacher-checkpoint', teacher] + extra)
        assert 'generates no data' in str(err.value)
    bad = [(['--data-root', str(tmp_path / 'nope'), '--teacher-checkpoint', teacher], 'not a directory'),
           (['--data-root', root], '--teacher-checkpoint'),
           (['--data-root', root, '--teacher-checkpoint', str(tmp_path / 'nope.pth')], 'not a file'),
           (['--data-root', root, '--teacher-checkpoint', teacher, '--workers', '2'], 'one job at a time'),
           (['--data-root', root, '--teacher-checkpoint', teacher, '--gpus', '0'], '--gpus')]
    for extra, match in bad:
        with pytest.raises(SystemExit, match=match):
            tool.main(['--preset', 'paper', '--out', out, '--dry-run'] + extra)
    with pytest.raises(SystemExit, match='--gpus applies to --preset paper only'):
        tool.main(['--preset', 'default', '--out', out, '--dry-run', '--gpus', '8'])
    assert not osp.exists(out)  # refused before anything was written
    # without the distilling arms no teacher is needed
    args = tool.parse_args(['--preset', 'paper', '--data-root', root, '--finetune-arms', 'scratch', 'clap'])
    tool.check_run_args(args, tool.make_setting(args))
    # the jobs refuse too: no data root, a data root without info files or v1.0-trainval, a missing teacher
    setting, paths = PRESETS['paper'], RunPaths(out)
    with pytest.raises(runners.JobError, match='--data-root'):
        runners.data_location(setting, paths, None)
    problems = runners.data_problems(setting, root)
    assert len(problems) == 3 and 'v1.0-trainval' in problems[-1]
    with pytest.raises(runners.JobError, match='nuscenes_infos_train.pkl'):
        runners.run_data(by_id(build_plan(setting))['data'], setting, paths, str(tmp_path / 'log'), root)
    with pytest.raises(runners.JobError, match='--teacher-checkpoint'):
        runners.run_teacher(by_id(build_plan(setting))['teacher'], setting, paths, str(tmp_path / 'log'), None)


def test_paper_teacher_job_copies_the_given_checkpoint(fake_root, tmp_path):
    root, teacher = fake_root
    paths = RunPaths(str(tmp_path / 'run'))
    setting = PRESETS['paper']
    rec = runners.run_teacher(by_id(build_plan(setting))['teacher'], setting, paths, str(tmp_path / 'log'), teacher)
    assert rec['checkpoint'] == paths.teacher_ckpt and rec['source'] == teacher
    with open(paths.teacher_ckpt, 'rb') as f:
        assert f.read() == b'not a real checkpoint'


# ------------------------------------------------------------------------------------------------ ladder in epochs
def test_paper_ladder_counts_epochs_and_the_report_says_so(monkeypatch, tmp_path):
    calls = []
    maps = {5: 0.10, 10: 0.20, 15: 0.30, 20: 0.305}

    def run_tool(args, log):
        args = [str(a) for a in args]
        calls.append(args)
        opts = opts_of(args)
        epochs, interval = int(opts['train_cfg.max_epochs']), int(opts['train_cfg.val_interval'])
        rows = [dict(step=i, loss=1.0, time=0.5, data_time=0.1) for i in range(1, 11)]
        rows += [{'step': e, runners.METRIC_PREFIX + 'mAP': maps[e], runners.METRIC_PREFIX + 'NDS': maps[e] / 2}
                 for e in range(interval, epochs + 1, interval)]
        folder = osp.join(args[args.index('--work-dir') + 1], '20260101_000000', 'vis_data')
        os.makedirs(folder)
        with open(osp.join(folder, 'scalars.json'), 'w') as f:
            f.write('\n'.join(json.dumps(r) for r in rows) + '\n')

    monkeypatch.setattr(runners, 'run_tool', run_tool)
    monkeypatch.setattr(runners, 'labelled_objects', lambda data, f, s: {})
    setting = PRESETS['paper']
    paths = RunPaths(str(tmp_path))
    data = dict(data_root='/data/nus/', version='v1.0-trainval', protocol='paper')
    rec = runners.run_ladder(by_id(build_plan(setting))['ladder'], setting, paths, str(tmp_path / 'log'), data,
                             runners.Launch(2))
    assert calls[0][:3] == ['tools/dist_train.sh', FINETUNE, '2']
    assert (rec['iterations'], rec['unit'], rec['at_cap']) == (20, 'epochs', True)
    assert rec['saturated'] and rec['stopped_by'] is None  # +1.7 % on the last rung
    records = dict(ladder=rec)
    text = render_markdown(setting, records, 'cmd', None)
    assert 'Chosen: **20 epochs** for every arm' in text and 'the epoch count' in text
    assert summary_json(setting, records)['ladder']['unit'] == 'epochs'
    maps[20] = 0.40  # still rising: the cap is named in epochs
    os.makedirs(osp.dirname(paths.record('ladder')), exist_ok=True)
    with open(paths.record('ladder'), 'w') as f:
        json.dump(runners.run_ladder(by_id(build_plan(setting))['ladder'], setting, paths, str(tmp_path / 'log'),
                                     data, runners.Launch(2)), f)
    assert runners.read_record(paths, 'ladder')['stopped_by'] == 'ladder cap 20 epochs'
    # a fine-tune reads the chosen epochs and validates once at its end (seed 1: scratch's seed 0 is the ladder's run)
    runners.run_finetune(by_id(build_plan(setting))['finetune-scratch-f0.05-s1'], setting, paths,
                         str(tmp_path / 'log'), data, runners.Launch(2))
    assert (opts_of(calls[-1])['train_cfg.max_epochs'], opts_of(calls[-1])['train_cfg.val_interval']) == ('20', '20')


# ------------------------------------------------------------------------------------------------ dry run
def test_templated_marks_the_tokens_that_depend_on_the_ladder():
    a = ['x', 'train_cfg.max_iters=20', 'param_scheduler.1.end=21', 'k=1']
    b = ['x', 'train_cfg.max_iters=80', 'param_scheduler.1.end=80', 'k=1']
    assert templated([a, b]) == ['x', 'train_cfg.max_iters={20|80}', 'param_scheduler.1.end={21|80}', 'k=1']
    assert templated([a]) == a
    assert train_argv(['tools/dist_train.sh', 'c.py', 8, '--work-dir', 'w'])[1:] == [
        '--work-dir', 'w', '--launcher', 'pytorch']


def test_paper_dry_run_prints_every_job_and_builds_every_config(fake_root, tmp_path):
    root, teacher = fake_root
    out = str(tmp_path / 'run')
    proc = subprocess.run([sys.executable, TOOL, '--preset', 'paper', '--data-root', root, '--teacher-checkpoint',
                           teacher, '--gpus', '2', '--out', out, '--dry-run'], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=110,
                          env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    lines = text.splitlines()
    plan = build_plan(PRESETS['paper'])
    for job in plan:  # one line per job: id, kind, deps
        mine = [ln for ln in lines if ln.startswith(f'{job.id}  {job.kind}  deps=')]
        assert len(mine) == 1, job.id
        assert f'deps={",".join(job.deps) or "-"}' in mine[0]
        line = mine[0]
        if job.kind == 'pretrain':
            assert f'$ bash tools/dist_train.sh {PAPER_PRETRAIN[job.stage]} 2 --work-dir ' in line
            assert 'train_cfg.max_epochs=12' in line and 'tools/export_pretrained.py' in line
        elif job.kind in ('ladder', 'finetune'):
            assert f'$ bash tools/dist_train.sh {FINETUNE} 2 --work-dir ' in line and 'label_fraction=0.05' in line
            assert f'data_root={root}/' in line and 'nus_version=v1.0-trainval' in line
        if job.kind == 'finetune':
            assert 'train_cfg.max_epochs={5|10|15|20}' in line
            enc = runners.encoder_file(RunPaths(out), job.arm)
            assert (f'load_from={enc}' in line) == (enc is not None) and ('load_from=' in line) == (enc is not None)
        if job.kind == 'teacher':
            assert f'copy --teacher-checkpoint {teacher}' in line
    assert len([ln for ln in lines if '  deps=' in ln]) == len(plan)
    # every config built, the fine-tune's at the ladder's cap, and each distinct model
    for config in list(PAPER_PRETRAIN.values()) + [FINETUNE]:
        assert f'  {config}: ' in text, config
    assert f'  {FINETUNE}: {1 + len(ARMS) * 3} (ladder, ...)' in text
    assert 'models built (9 distinct' in text and 'CLAPBEVFusion of ladder' in text
    assert 'dry run OK: 36 jobs, 41 configs and 9 models built' in text
    assert 'nuscenes_infos_train.pkl is missing' in text  # the fake root is reported, not fatal
    assert not osp.exists(out)  # nothing written


def test_dry_run_build_fails_on_a_broken_config(monkeypatch, tmp_path):
    """The builds are real: a pre-training config that does not exist, or cfg-options the config cannot take, are
    errors (configs only here; the models are covered by the dry run above)."""
    setting = Setting(protocol='paper', pretrain_epochs=12, ladder=(5, 10), fractions=(0.05, ), seeds=(0, ),
                      probe_arms=(), finetune_arms=('scratch', 'simipu'))
    paths = RunPaths(str(tmp_path / 'run'))
    data = runners.data_location(setting, paths, str(tmp_path))
    lines = job_lines(setting, paths, data, runners.Launch(8))
    report = build_configs(lines, setting, data, build_models=False)
    assert not report.errors and len(report.configs) == 2 + 1 + 2  # simipu train + export, ladder, 2 fine-tunes
    simipu = ARMS['simipu'].stages[0]
    broken = type(simipu)(simipu.name, simipu.config, paper_config='projects/SimIPU/configs/missing.py')
    monkeypatch.setitem(ARMS, 'simipu', type(ARMS['simipu'])('simipu', 'SimIPU', (broken, )))
    report = build_configs(job_lines(setting, paths, data, runners.Launch(8)), setting, data, build_models=False)
    assert any('missing.py' in e for e in report.errors)
    monkeypatch.setattr(runners, 'paper_finetune_options', lambda *a: ['label_fraction=0.05', 'data_root='])
    report = build_configs(job_lines(setting, paths, data, runners.Launch(8)), setting, data, build_models=False)
    assert any(e.startswith('ladder:') and 'data_root' in e for e in report.errors)


def test_dry_run_refuses_a_ladder_past_the_fine_tune_schedule(tmp_path):
    from clap_plugin.benchmarks.label_efficiency.dry_run import dry_run
    printed = []
    setting = Setting(protocol='paper', pretrain_epochs=12, ladder=(10, 25), fractions=(0.05, ), seeds=(0, ),
                      probe_arms=(), finetune_arms=('scratch', ))
    assert dry_run(setting, RunPaths(str(tmp_path / 'run')), str(tmp_path), runners.Launch(8),
                   build_models=False, out=printed.append) == 1
    assert 'ends at epoch 20' in printed[-1] and not osp.exists(tmp_path / 'run')

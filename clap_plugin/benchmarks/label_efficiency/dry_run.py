"""``--dry-run``: the plan of a run, one line per job with the exact commands it would run, and every config those
commands use built as the tools build it. Nothing is run and nothing is written (no records, no setting file).

The commands come from the same functions the runners call (:mod:`.jobs`). A fine-tune's length is the ladder's
choice, known only once the ladder job has run: its commands show ``KEY={a|b|...}`` (the value at each rung) unless
the run directory already has the ladder's record. Each training command's config is read with mmengine's
``Config.fromfile`` and its arguments applied by ``clap_plugin.apis.train.build_train_cfg`` (the ``--cfg-options``
merged by ``merge_cfg_options``, ``--work-dir``, ``--auto-scale-lr``, the load report); fine-tunes are built at the
ladder's longest rung. Each distinct model config is built with ``MODELS.build`` (the full-size models in well under
a second each, on CPU). The info files each config reads are checked and reported as notes: a dry run before the
data exists is still a valid dry run.
"""
import json
import os.path as osp
import shlex
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from . import jobs as runners
from .arms import finetune_config
from .plan import Job, RunPaths, build_plan
from .setting import Setting


@dataclass
class JobLine:
    """What one job does: tool commands (arguments of :func:`.jobs.tool_command`), run in order, and a note for
    what it does in-process. ``train`` are the commands that train (their configs get built)."""
    job: Job
    commands: List[List[str]] = field(default_factory=list)
    note: str = ''
    train: List[List[str]] = field(default_factory=list)


def ladder_length(setting: Setting, paths: RunPaths) -> Optional[int]:
    """The ladder's choice when its record exists (a run directory under way), else None."""
    if not osp.isfile(paths.record('ladder')):
        return None
    return int(runners.read_record(paths, 'ladder')['iterations'])


def templated(commands: Sequence[Sequence[str]]) -> List[str]:
    """One command from the variants of a command at every ladder rung: a token that differs becomes
    ``KEY={v1|v2|...}`` (``KEY=`` kept when every variant has it)."""
    out = []
    for tokens in zip(*commands):
        values = list(dict.fromkeys(str(t) for t in tokens))
        if len(values) == 1:
            out.append(values[0])
            continue
        keys = {v.split('=', 1)[0] for v in values}
        if len(keys) == 1 and all('=' in v for v in values):
            key = keys.pop()
            out.append(f'{key}={{{"|".join(v.split("=", 1)[1] for v in values)}}}')
        else:
            out.append('{' + '|'.join(values) + '}')
    return out


def job_lines(setting: Setting, paths: RunPaths, data: Dict, launch: 'runners.Launch',
              teacher_checkpoint: Optional[str] = None) -> List[JobLine]:
    """Every job of the plan with its commands, as the runners would run them now."""
    chosen = ladder_length(setting, paths)
    rungs = [chosen] if chosen is not None else list(setting.ladder)
    lines = []
    for job in build_plan(setting):
        line = JobLine(job)
        if job.kind == 'data':
            if data.get('generated'):
                line.commands = runners.data_commands(setting, paths)
            else:
                wanted = list(runners.INFO_FILES) + (['v1.0-trainval/'] if setting.paper else [])
                line.note = f'check {data["data_root"]} has {", ".join(wanted)}; count the objects per class'
        elif job.kind == 'teacher':
            if setting.paper:
                line.note = f'copy --teacher-checkpoint {teacher_checkpoint} to {paths.teacher_ckpt}'
            else:
                line.commands = runners.teacher_commands(setting, paths)
        elif job.kind == 'pretrain':
            train = runners.pretrain_command(job, setting, paths, data, launch)
            line.commands = [train, runners.export_command(job, setting, paths, data)]
            line.train = [train]
            if runners.stage_of(job).needs_teacher:
                line.note = (f'before the export: writes {runners.export_config_path(job, setting, paths)} (the '
                             f'stage config with model.teacher_checkpoint={paths.teacher_ckpt})')
        elif job.kind == 'merge':
            line.commands = [runners.merge_command(job, paths)]
        elif job.kind == 'ceiling':
            line.commands = line.train = [runners.ceiling_command(job, setting, paths, data, launch)]
        elif job.kind == 'ladder':
            line.commands = line.train = [runners.ladder_command(job, setting, paths, data, launch)]
        elif job.kind == 'finetune':
            enc = runners.encoder_file(paths, job.arm)
            variants = [runners.finetune_command(job, setting, paths, data, launch, n, enc) for n in rungs]
            line.commands = [templated(variants)]
            line.train = [variants[-1]]
        elif job.kind == 'probe':
            enc = runners.encoder_file(paths, job.arm) or 'none (random init)'
            line.note = (f'in-process: frozen probe on {finetune_config(setting.protocol)} with encoders {enc}, '
                         f'{setting.probe_iters} head iterations at each of fractions {list(setting.fractions)} x '
                         f'seeds {list(setting.seeds)}')
        elif job.kind == 'pretext':
            line.note = (f'in-process: rendered depth / RGB on {setting.pretext_samples} val samples, before and '
                         f'after pre-training ({runners.stage_of(job).config_of(setting.protocol)})')
        else:
            raise ValueError(f'unknown job kind {job.kind!r}')
        lines.append(line)
    return lines


def shell(args: Sequence[str]) -> str:
    """A tool command as the shell line that runs it (from the repository root)."""
    return ' '.join(shlex.quote(a) if '{' not in a else a for a in runners.tool_command(args))


def format_line(line: JobLine) -> str:
    """``ID  KIND  deps=A,B  $ CMD && CMD  # NOTE`` on one line."""
    deps = ','.join(line.job.deps) or '-'
    text = f'{line.job.id}  {line.job.kind}  deps={deps}'
    if line.commands:
        text += '  $ ' + ' && '.join(shell(c) for c in line.commands)
    if line.note:
        text += f'  # {line.note}'
    return text


def train_argv(args: Sequence[str]) -> List[str]:
    """The ``tools/train.py`` arguments of a training command (``tools/dist_train.sh CONFIG GPUS ...`` passes
    ``CONFIG ... --launcher pytorch``), with the config path absolute."""
    args = [str(a) for a in args]
    if args[0] == 'tools/train.py':
        argv = args[1:]
    elif args[0] == 'tools/dist_train.sh':
        argv = [args[1]] + args[3:] + ['--launcher', 'pytorch']
    else:
        raise ValueError(f'not a training command: {args[:2]}')
    argv[0] = argv[0] if osp.isabs(argv[0]) else osp.join(runners.REPO, argv[0])
    return argv


@dataclass
class BuildReport:
    """What the dry run built: ``configs`` (job id, config), ``models`` (model type, parameters in millions,
    seconds, first job), ``notes`` (missing data files, stand-ins) and ``errors``."""
    configs: List[tuple] = field(default_factory=list)
    models: List[tuple] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)


def _teacher_for_build(model: dict, teacher_checkpoint: Optional[str], report: BuildReport, job_id: str) -> dict:
    """The model config to build when its teacher file does not exist yet: the given ``--teacher-checkpoint``, or
    the random-teacher stand-in (the build reads no weights either way)."""
    path = model.get('teacher_checkpoint')
    if not path or osp.isfile(path):
        return model
    model = dict(model)
    if teacher_checkpoint and osp.isfile(teacher_checkpoint):
        model['teacher_checkpoint'] = teacher_checkpoint
    else:
        model['teacher_checkpoint'] = None
        model['random_teacher_ablation'] = True
        report.notes.append(f'{job_id}: the teacher {path} does not exist yet; its model was built with the '
                            'random-teacher stand-in (the build reads no weights)')
    return model


def shadow_configs(lines: Sequence[JobLine], setting: Setting, paths: RunPaths, folder: str) -> Dict[str, str]:
    """The configs a run writes under ``OUT/configs`` (a model variant, EMA validation) that do not exist yet,
    written by the runners' own writers under ``folder`` instead: ``{path under OUT: path under folder}``. A dry run
    on a fresh run directory builds these, and writes nothing under ``OUT``."""
    if not runners.writes_configs(setting):
        return {}
    shadow = RunPaths(folder)
    written = {runners.finetune_run_config(setting, paths): runners.write_finetune_config(setting, shadow),
               runners.ladder_run_config(setting, paths): runners.write_ladder_config(setting, shadow)}
    for line in lines:
        if line.job.kind == 'pretrain':
            written[runners.export_config_path(line.job, setting, paths)] = runners.stage_config(line.job, setting,
                                                                                                 shadow)
    return {osp.abspath(a): b for a, b in written.items() if a != b and not osp.isfile(a)}


def build_configs(lines: Sequence[JobLine], setting: Setting, data: Dict, teacher_checkpoint: Optional[str] = None,
                  build_models: bool = True, shadow: Optional[Dict[str, str]] = None) -> BuildReport:
    """Build the config of every training command (as ``tools/train.py`` builds it) and of every export, and each
    distinct model once; a config in ``shadow`` (:func:`shadow_configs`) is read from its stand-in."""
    from mmengine.config import Config

    from clap_plugin.apis.data_files import check_data_files
    from clap_plugin.apis.train import build_train_cfg, parse_args
    report = BuildReport()
    models: Dict[str, int] = {}
    missing_data: Dict[str, List[str]] = {}
    if build_models:
        from mmdet3d.registry import MODELS
        from mmdet3d.utils import register_all_modules
        register_all_modules(init_default_scope=True)
        import clap_plugin  # noqa: F401
    root = data['data_root'].rstrip('/') + '/'
    for line in lines:
        for cmd in line.train:
            argv = train_argv(cmd)
            config = argv[0]
            argv[0] = (shadow or {}).get(osp.abspath(config), config)
            try:
                cfg = build_train_cfg(parse_args(argv))
            except (SystemExit, Exception) as err:  # load_config / merge_cfg_options exit with one line
                report.errors.append(f'{line.job.id}: {argv[0]}: {type(err).__name__}: {err}')
                continue
            report.configs.append((line.job.id, osp.relpath(config, runners.REPO)))
            if str(cfg.get('data_root', '')).rstrip('/') + '/' != root:
                report.errors.append(f'{line.job.id}: data_root is {cfg.get("data_root")!r}, not {root!r}')
            try:
                check_data_files(cfg, ['train_dataloader', 'val_dataloader', 'val_evaluator'])
            except SystemExit as err:
                missing_data.setdefault(str(err).split(' does not exist')[0], []).append(line.job.id)
            if not build_models:
                continue
            model = _teacher_for_build(cfg.model.to_dict(), teacher_checkpoint, report, line.job.id)
            key = json.dumps(model, sort_keys=True, default=str)
            if key in models:
                continue
            t0 = time.time()
            try:
                built = MODELS.build(model)
            except Exception as err:
                report.errors.append(f'{line.job.id}: MODELS.build({model.get("type")}): {type(err).__name__}: {err}')
                models[key] = -1
                continue
            models[key] = len(report.models)
            report.models.append((model.get('type'), sum(p.numel() for p in built.parameters()) / 1e6,
                                  time.time() - t0, line.job.id))
            del built
        if line.job.kind == 'pretrain':  # the export's config: the stage's, with the teacher set for a distiller
            stage = runners.stage_of(line.job)
            path = osp.join(runners.REPO, stage.config_of(setting.protocol))
            try:
                cfg = Config.fromfile(path)
                if 'dataset' not in cfg.train_dataloader:
                    raise KeyError('train_dataloader.dataset (the export re-estimates BN statistics on it)')
            except Exception as err:
                report.errors.append(f'{line.job.id}: export config {path}: {type(err).__name__}: {err}')
                continue
            report.configs.append((line.job.id + ' (export)', osp.relpath(path, runners.REPO)))
    for what, ids in missing_data.items():
        report.notes.append(f'{what.replace("error: ", "")} does not exist yet ({len(ids)} configs, first '
                            f'{ids[0]}): made by the data job, or by tools/create_data.py')
    return report


def dry_run(setting: Setting, paths: RunPaths, data_root: Optional[str], launch: 'runners.Launch',
            teacher_checkpoint: Optional[str] = None, build_models: bool = True,
            out: Callable[[str], None] = print) -> int:
    """Print the plan and build its configs; returns the exit code (0 when every config and model built)."""
    t0 = time.time()
    try:
        data = runners.data_location(setting, paths, data_root)
        lines = job_lines(setting, paths, data, launch, teacher_checkpoint)
    except runners.JobError as err:  # a command that cannot be made (no data root, a ladder past the schedule)
        out(f'error: {err}')
        return 1
    python = runners.tool_command(['x.py'])[0]
    how = (f'bash tools/dist_train.sh CONFIG {launch.gpus} (--auto-scale-lr) per training job'
           if launch.gpus else 'python tools/train.py CONFIG per training job, one process')
    out(f'dry run: protocol {setting.protocol}, {len(lines)} jobs, run directory {paths.out} (nothing is run or '
        'written)')
    out(f'data: {data["data_root"]} ({data["version"]}); launch: {how}; commands run from {runners.REPO} with '
        f'PYTHONPATH={runners.REPO}, OMP_NUM_THREADS=1, python = {python}')
    if data_root is not None:
        for problem in runners.data_problems(setting, data_root):
            out(f'note: --data-root {data_root}: {problem} (the data job refuses to start without it)')
    if any(j.job.kind == 'finetune' for j in lines) and ladder_length(setting, paths) is None:
        out(f'note: KEY={{a|b|...}} in a fine-tune command: the value at each ladder rung ({list(setting.ladder)} '
            f'{setting.unit}); the ladder job chooses the rung; configs are built at {setting.ladder[-1]}')
    if osp.isfile(paths.setting):
        diff = Setting.load(paths.setting).identity_diff(setting)
        if diff:
            out(f'note: {paths.setting} was made with another setting ({"; ".join(diff)}): a run would refuse it')
    for line in lines:
        done = osp.isfile(paths.record(line.job.id))
        out(format_line(line) + ('  [done]' if done else ''))
    with tempfile.TemporaryDirectory() as folder:
        report = build_configs(lines, setting, data, teacher_checkpoint, build_models,
                               shadow_configs(lines, setting, paths, folder))
    out('')
    configs = sorted({c for _, c in report.configs})
    out(f'configs built ({len(report.configs)} job configs, {len(configs)} files, Config.fromfile + the job\'s '
        'arguments as tools/train.py applies them):')
    for c in configs:
        ids = [j for j, cc in report.configs if cc == c]
        out(f'  {c}: {len(ids)} ({ids[0]}{", ..." if len(ids) > 1 else ""})')
    if build_models:
        out(f'models built ({len(report.models)} distinct, MODELS.build on CPU):')
        for kind, params, seconds, job_id in report.models:
            out(f'  {kind} of {job_id}: {params:.1f} M parameters ({seconds:.2f} s)')
    for note in report.notes:
        out(f'note: {note}')
    for err in report.errors:
        out(f'ERROR {err}')
    verdict = 'OK' if not report.errors else f'{len(report.errors)} errors'
    out(f'dry run {verdict}: {len(lines)} jobs, {len(report.configs)} configs and {len(report.models)} models '
        f'built in {time.time() - t0:.1f} s; nothing was run or written')
    return 0 if not report.errors else 1


__all__ = ['JobLine', 'BuildReport', 'build_configs', 'dry_run', 'format_line', 'job_lines', 'templated',
           'train_argv']

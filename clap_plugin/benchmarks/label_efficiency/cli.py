"""The label-efficiency benchmark's command line (``tools/benchmarks/label_efficiency.py``): pre-train every arm,
probe and fine-tune BEVFusion on few labels.

    python tools/benchmarks/label_efficiency.py                       # default setting, work_dirs/label_efficiency
    python tools/benchmarks/label_efficiency.py --smoke --out /tmp/le  # a few minutes: every job kind once
    python tools/benchmarks/label_efficiency.py --preset large --workers 8   # bigger machines
    python tools/benchmarks/label_efficiency.py --preset diverse --out work_dirs/le_diverse  # 40 + 20 scenes of 2
    python tools/benchmarks/label_efficiency.py --report-only --md tools/benchmarks/label_efficiency.md
    python tools/benchmarks/label_efficiency.py --preset paper --data-root data/nuscenes/ --gpus 8 \
        --teacher-checkpoint swin-t.pth --out work_dirs/le_paper     # the paper's protocol, GPU machine
    python tools/benchmarks/label_efficiency.py --preset paper --data-root data/nuscenes/ ... --dry-run

One synthetic nuScenes set (v1.0-trainval scene names: train scenes for pre-training and fine-tuning, val scenes
for evaluation; half and half, or ``val_scenes`` of them) is generated, or reused with ``--data-root``. The report
gives the distinct annotated objects per class of the train split, of every labelled subset and of the val split.
Every arm is pre-trained once on all train samples without labels and exported; scratch is fine-tuned along an
iteration ladder to fix the iteration count (and once with every train sample labelled, validated along the way:
the ceiling curve); then every arm gets a frozen-encoder probe (all arms) and full
fine-tuning (``finetune_arms``) at each label fraction and seed, scored with NuScenesMetric on the val split. One
JSON record per job is written atomically under ``OUT/records``: a killed run continues where it stopped, and a
later run with more seeds adds only the missing jobs. The tables (with the paper's claims tested), the plot and
the machine-readable summary ``label_efficiency.json`` (beside each markdown file) are rewritten at the end of
every run.

``--preset paper`` is the paper's protocol on real nuScenes (``--data-root``: a converted v1.0-trainval tree; no
synthetic set is made) with the full-size configs: each arm's pre-training config (12 epochs), export, and the
full-size fine-tune config ``configs/bevfusion_lidar-cam_finetune_nus.py`` with BEVFusion's cyclic schedule at 5 %
of the labels (``--fractions 0.05 0.025 0.01 0.005`` for more). Scratch's ladder runs that schedule and is validated
every 5 epochs; every arm is then fine-tuned for the epochs it chose. Every training job runs through
``bash tools/dist_train.sh CONFIG GPUS`` (``--gpus``, default 8; ``--auto-scale-lr``), one job at a time. PPKT and
CMCR need ``--teacher-checkpoint`` (a 2D network learnt on 2D data, e.g. ImageNet / nuImages Swin-T weights). The
frozen probe, the pretext figures and the ceiling run are CPU-tiny instruments and are not part of it.

``--dry-run`` (any preset) prints the plan, one line per job with its id, kind, dependencies and the exact commands
it would run, and builds every config those commands use (and each distinct model), then exits without running or
writing anything.
"""
import argparse
import dataclasses
import json
import os
import os.path as osp
import shlex
import shutil
import signal
import subprocess
import sys
import time

from clap_plugin.utils.atomic_write import write_json_atomic

from . import jobs as runners
from .arms import ARMS
from .curves import ladder_convergence
from .dry_run import dry_run
from .plan import Job, RunPaths, build_plan, by_id, fraction_tag, probe_id
from .report import load_records, plot, render_markdown, summary_json
from .scheduler import run_jobs, select_jobs
from .setting import PRESETS, Setting

# the entry point that every job's process runs (``--run-job``)
TOOL = osp.join(runners.REPO, 'tools', 'benchmarks', 'label_efficiency.py')


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='work_dirs/label_efficiency', help='run directory (records, logs, data)')
    p.add_argument('--preset', choices=sorted(PRESETS), default='default')
    p.add_argument('--smoke', action='store_true', help='same as --preset smoke')
    p.add_argument('--workers', type=int, help='jobs run at once (one CPU thread each; default 2, and 1 for '
                   '--preset paper, whose jobs each take --gpus GPUs)')
    p.add_argument('--seeds', type=int, nargs='+', help='override the preset seeds')
    p.add_argument('--fractions', type=float, nargs='+', help='override the preset label fractions')
    p.add_argument('--probe-arms', nargs='+', choices=sorted(ARMS), help='override the probed arms')
    p.add_argument('--finetune-arms', nargs='+', choices=sorted(ARMS), help='override the fine-tuned arms')
    p.add_argument('--data-root', help='reuse this synthetic set (with its info files) instead of generating one; '
                   '--preset paper: the converted real nuScenes v1.0-trainval tree (required)')
    p.add_argument('--gpus', type=int, help='--preset paper: GPUs per training job (tools/dist_train.sh; default 8)')
    p.add_argument('--teacher-checkpoint', help='--preset paper: the frozen 2D teacher of PPKT and CMCR (a local '
                   'checkpoint of the image backbone, e.g. ImageNet / nuImages Swin-T weights)')
    p.add_argument('--dry-run', action='store_true', help='print the plan (each job\'s commands) and build every '
                   'config and model it uses; run and write nothing')
    p.add_argument('--max-jobs', type=int, help='run only the first N jobs not yet done, in launch order (data, '
                   'ceiling, ladder, teacher, pre-training, ...), then stop (resume later)')
    p.add_argument('--jobs', nargs='+', metavar='PATTERN', help='run only the jobs whose id matches one of these '
                   'shell patterns (e.g. "finetune-clap-*" "probe-*"; --dry-run lists the ids), with the jobs they '
                   'need that are not done; the rest stays for a later run')
    p.add_argument('--md', help='also write the tables here (the plot and the JSON summary, same stem, go beside '
                   'it)')
    p.add_argument('--report-only', action='store_true', help='only rewrite the tables and plot from the records')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--run-job', help=argparse.SUPPRESS)  # internal: run one job of OUT's plan in this process
    return p.parse_args(argv)


def make_setting(args) -> Setting:
    base = PRESETS['smoke' if args.smoke else args.preset]
    kw = base.to_json()
    for key in ('seeds', 'fractions', 'probe_arms', 'finetune_arms'):
        if getattr(args, key) is not None:
            kw[key] = list(getattr(args, key))
    setting = Setting.from_json(kw)
    try:
        setting.validate()
    except ValueError as err:  # one line naming the value (e.g. --probe-arms with --preset paper)
        raise SystemExit(f'error: {err}') from err
    return setting


def check_run_args(args, setting: Setting) -> None:
    """Refuse arguments the setting's protocol cannot run with, naming the flag (before anything is written)."""
    needs_teacher = any(j.kind == 'teacher' for j in build_plan(setting))
    if setting.paper:
        if not args.data_root:
            raise SystemExit('error: --preset paper trains on real nuScenes and generates no data: give --data-root '
                             'DIR (a nuScenes v1.0-trainval tree with nuscenes_infos_{train,val}.pkl from '
                             'tools/create_data.py)')
        if not osp.isdir(args.data_root):
            raise SystemExit(f'error: --data-root {args.data_root!r} is not a directory')
        if args.workers is not None and args.workers != 1:
            raise SystemExit(f'error: --workers {args.workers}: --preset paper runs one job at a time, each on '
                             '--gpus GPUs through tools/dist_train.sh')
        if needs_teacher and not args.teacher_checkpoint:
            arms = [a for a in setting.finetune_arms if any(s.needs_teacher for s in ARMS[a].stages)]
            raise SystemExit(f'error: --preset paper with {", ".join(arms)}: give --teacher-checkpoint PATH (the '
                             'frozen 2D teacher they distil, learnt on 2D data), or leave them out with '
                             '--finetune-arms')
        if args.teacher_checkpoint and not osp.isfile(args.teacher_checkpoint):
            raise SystemExit(f'error: --teacher-checkpoint {args.teacher_checkpoint!r} is not a file')
    else:
        for flag, value in (('--gpus', args.gpus), ('--teacher-checkpoint', args.teacher_checkpoint)):
            if value is not None:
                raise SystemExit(f'error: {flag} applies to --preset paper only (protocol {setting.protocol} runs '
                                 'one CPU process per job and trains its own 2D teacher)')
    if args.gpus is not None and args.gpus < 1:
        raise SystemExit(f'error: --gpus must be >= 1, got {args.gpus}')


def settle(paths: RunPaths, setting: Setting, report_only: bool = False) -> Setting:
    """The run directory's setting: a new one is saved; an existing one must agree on the identity fields
    (``report_only``: an existing one is used as it is, so that any run directory's report can be rewritten)."""
    if report_only and osp.isfile(paths.setting):
        return Setting.load(paths.setting)
    if osp.isfile(paths.setting):
        old = Setting.load(paths.setting)
        diff = old.identity_diff(setting)
        if diff:
            raise SystemExit(f'error: {paths.setting} was made with another setting ({"; ".join(diff)}); use '
                             'another --out, or the same preset')
    setting.save(paths.setting)
    return setting


def probe_record_id(arm: str, fraction: float, seed: int) -> str:
    return f'{probe_id(arm)}-{fraction_tag(fraction)}-s{seed}'


def is_done_fn(paths: RunPaths, setting: Setting):
    def is_done(job_id: str) -> bool:
        if not osp.isfile(paths.record(job_id)):
            return False
        if job_id.startswith('probe-'):  # done when every (fraction, seed) of the setting has its record
            arm = job_id[len('probe-'):]
            return all(osp.isfile(paths.record(probe_record_id(arm, f, s)))
                       for f in setting.fractions for s in setting.seeds)
        return True
    return is_done


# ------------------------------------------------------------------------------------------- one job
def run_one(job: Job, setting: Setting, paths: RunPaths, data_root=None, gpus=None, teacher_checkpoint=None) -> None:
    log = paths.log(job.id)
    launch = runners.default_launch(setting, gpus)
    os.makedirs(osp.dirname(log), exist_ok=True)
    t0 = time.time()
    if job.kind == 'data':
        record = runners.run_data(job, setting, paths, log, data_root)
        write_json_atomic(paths.record(job.id), record)
        return
    data = runners.read_record(paths, 'data') if job.kind != 'teacher' else None
    if job.kind == 'teacher':
        record = runners.run_teacher(job, setting, paths, log, teacher_checkpoint)
    elif job.kind == 'pretrain':
        record = runners.run_pretrain(job, setting, paths, log, data, launch)
    elif job.kind == 'merge':
        record = runners.run_merge(job, setting, paths, log)
    elif job.kind == 'ceiling':
        record = runners.run_ceiling(job, setting, paths, log, data, launch)
    elif job.kind == 'ladder':
        record = runners.run_ladder(job, setting, paths, log, data, launch)
    elif job.kind == 'finetune':
        record = runners.run_finetune(job, setting, paths, log, data, launch)
    elif job.kind == 'probe':
        record = run_probe(job, setting, paths, data)
    elif job.kind == 'pretext':
        record = run_pretext(job, setting, paths, data)
    else:
        raise ValueError(f'unknown job kind {job.kind!r}')
    record.setdefault('seconds', time.time() - t0)
    write_json_atomic(paths.record(job.id), record)


def init_registries() -> None:
    """mmdet3d's modules and this package's, with 'mmdet3d' as the default scope (as the configs set it)."""
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import clap_plugin  # noqa: F401


def probe_length(probe, job: Job, setting: Setting, paths: RunPaths) -> dict:
    """The probes' head iterations: ``probe_iters`` without a probe ladder; else, for scratch, its curve over the
    ladder's rungs (ladder fraction, seed 0) and the rung the ladder's rule picks; for any other arm, scratch's
    choice (its probe job runs first)."""
    if not setting.probe_ladder:
        return dict(iterations=int(setting.probe_iters))
    if job.arm != 'scratch':
        return dict(runners.read_record(paths, probe_id('scratch'))['probe_length'], chosen_by='scratch')
    rungs = [int(r) for r in setting.probe_ladder]
    curve = probe.curve(setting.ladder_fraction, 0, rungs, setting.probe_lr, normalize=setting.probe_version >= 2)
    out = dict(curve=curve, fraction=setting.ladder_fraction, seed=0, **runners.choose_iterations(curve, rungs))
    out.update(dataclasses.asdict(ladder_convergence(curve, rungs)))
    print(f'probe length: {out["iterations"]} head iterations (curve {[(c["step"], round(c["mAP"], 4)) for c in curve]}'
          f'; saturated: {out["saturated"]})', flush=True)
    return out


def run_probe(job: Job, setting: Setting, paths: RunPaths, data: dict) -> dict:
    init_registries()
    from .frozen_probe import FrozenProbe
    encoders = runners.arm_encoders(paths, job.arm)
    config = runners.write_finetune_config(setting, paths)  # the run's fine-tune config (its model variant)
    probe = FrozenProbe(osp.join(runners.REPO, config), data['data_root'], data['version'], encoders,
                        cfg_options={'model.bbox_head.heatmap_prior_prob': setting.heatmap_prior_prob})
    print(f'{job.arm}: {probe.loaded} encoder tensors loaded; features of {len(probe.train)} train and '
          f'{len(probe.val)} val samples in {probe.feature_seconds:.0f} s (per-channel std '
          f'{probe.scale.channel_std:.3g}, mean |f| {probe.scale.abs_mean:.3g})', flush=True)
    length = probe_length(probe, job, setting, paths)
    for f in setting.fractions:
        for s in setting.seeds:
            rid = probe_record_id(job.arm, f, s)
            if osp.isfile(paths.record(rid)):
                continue
            r = probe.run(float(f), int(s), int(length['iterations']), setting.probe_lr,
                          normalize=setting.probe_version >= 2)
            print(f'{rid}: mAP {r["mAP"]:.4f} NDS {r["NDS"]:.4f} ({r["seconds"]:.0f} s)', flush=True)
            write_json_atomic(paths.record(rid), dict(arm=job.arm, fraction=float(f), seed=int(s), **r,
                                                      labelled_objects=runners.labelled_objects(data, f, s)))
    return dict(arm=job.arm, encoders=encoders, loaded_tensors=probe.loaded, feature_seconds=probe.feature_seconds,
                train_samples=len(probe.train), val_samples=len(probe.val), probe_length=length,
                feature_scale=dataclasses.asdict(probe.scale))


def run_pretext(job: Job, setting: Setting, paths: RunPaths, data: dict) -> dict:
    from .pretext import pretext_figures
    init_registries()
    pre = runners.read_record(paths, f'pretrain-{job.stage}')
    cfg = osp.join(runners.REPO, pre['config'])
    before = pretext_figures(cfg, None, data['data_root'], data['version'], setting.pretext_samples)
    after = pretext_figures(cfg, pre['checkpoint'], data['data_root'], data['version'], setting.pretext_samples)
    print(f'{job.stage}: before {before}\n{job.stage}: after {after}', flush=True)
    return dict(arm=job.arm, stage=job.stage, before=before, after=after)


# ------------------------------------------------------------------------------------------- the run
RUNNING: 'set[subprocess.Popen]' = set()


def _signal_job(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to a job's whole process group: the job process and the tool it runs (tools/train.py, ...)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def stop_children(signum, frame) -> None:
    """On SIGTERM / SIGINT: stop the running jobs, with the training processes they started (they would otherwise
    finish behind a restarted run)."""
    for proc in list(RUNNING):
        _signal_job(proc, signal.SIGTERM)
    for proc in list(RUNNING):
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _signal_job(proc, signal.SIGKILL)
    raise SystemExit(128 + signum)


def record_invocation(paths: RunPaths, entry: dict) -> None:
    """Append one invocation (start, wall seconds, workers, jobs run, ...) to ``OUT/invocations.json``."""
    inv = osp.join(paths.out, 'invocations.json')
    runs = json.load(open(inv)) if osp.isfile(inv) else []
    write_json_atomic(inv, runs + [entry])


def lock_run_dir(paths: RunPaths):
    """An exclusive lock on the run directory: two runs on one directory would run the same jobs twice."""
    import fcntl
    os.makedirs(paths.out, exist_ok=True)
    handle = open(osp.join(paths.out, '.lock'), 'w')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f'error: another label_efficiency run holds {paths.out}')
    return handle


def launcher(args, paths: RunPaths):
    def launch(job: Job) -> None:
        cmd = [sys.executable, TOOL, '--out', paths.out, '--run-job', job.id]
        if args.data_root:
            cmd += ['--data-root', args.data_root]
        if args.gpus is not None:
            cmd += ['--gpus', str(args.gpus)]
        if args.teacher_checkpoint:
            cmd += ['--teacher-checkpoint', args.teacher_checkpoint]
        os.makedirs(osp.dirname(paths.log(job.id)), exist_ok=True)
        env = dict(os.environ, OMP_NUM_THREADS='1')
        with open(paths.log(job.id), 'a') as log:
            # a process group of its own, so that a stop reaches the tool the job runs as well
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            RUNNING.add(proc)
            try:
                rc = proc.wait()
            finally:
                RUNNING.discard(proc)
        if rc != 0:
            raise RuntimeError(f'exit {rc}; see {paths.log(job.id)}')
    return launch


def summary_path(md_path: str) -> str:
    """The JSON summary beside a markdown report: same folder and stem, ``.json``."""
    return osp.splitext(md_path)[0] + '.json'


def write_report(paths: RunPaths, setting: Setting, command: str, md_path=None) -> str:
    records = load_records(paths)
    wall = None
    inv = osp.join(paths.out, 'invocations.json')
    if osp.isfile(inv):
        with open(inv) as f:
            runs = json.load(f)
        wall = dict(minutes=sum(r['seconds'] for r in runs) / 60, invocations=len(runs),
                    workers=max(r['workers'] for r in runs))
        made_by = list(dict.fromkeys(r['command'] for r in runs if r.get('command') and r.get('jobs_run')))
        if made_by:  # the runs that produced records, then the command that wrote this report
            command = '\n'.join(made_by + ([command] if command not in made_by else []))
    from .report import collect
    cells = dict(probe=collect(records, 'probe'), finetune=collect(records, 'finetune'))
    png = osp.join(paths.out, 'label_efficiency.png')
    have_plot = any(cells.values())
    if have_plot:
        plot(cells, dict(probe=setting.probe_arms, finetune=setting.finetune_arms), setting.fractions, png,
             'full-size BEVFusion, nuScenes' if setting.paper else
             'CPU-tiny BEVFusion, synthetic nuScenes' if setting.variant == 'cpu-tiny' else
             f'CPU-tiny BEVFusion, {setting.variant} variant, synthetic nuScenes')
    from .iteration_cost import COST_FILE, report_section
    cost = report_section(osp.join(paths.out, COST_FILE))
    summary = summary_json(setting, records)
    targets = [osp.join(paths.out, 'label_efficiency.md')] + ([md_path] if md_path else [])
    for md in targets:
        # the plot goes beside each markdown file under the markdown's stem (another report's plot stays)
        png_name = osp.splitext(osp.basename(md))[0] + '.png'
        text = render_markdown(setting, records, command, png_name if have_plot else None, wall)
        if cost:
            text = text.rstrip('\n') + '\n\n' + '\n'.join(cost)
        write_json_atomic(summary_path(md), summary)
        os.makedirs(osp.dirname(osp.abspath(md)), exist_ok=True)
        tmp = md + '.tmp'
        with open(tmp, 'w') as f:
            f.write(text)
        os.replace(tmp, md)
        target_png = osp.join(osp.dirname(osp.abspath(md)), png_name)
        if have_plot and osp.abspath(target_png) != osp.abspath(png):
            shutil.copyfile(png, target_png)
    return text


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = RunPaths(osp.abspath(args.out))
    if args.run_job:
        setting = Setting.load(paths.setting)
        plan = by_id(build_plan(setting))
        if args.run_job not in plan:
            raise SystemExit(f'error: no job {args.run_job!r} in the plan of {paths.setting}')
        run_one(plan[args.run_job], setting, paths, args.data_root, args.gpus, args.teacher_checkpoint)
        return 0
    if not args.report_only:
        setting = make_setting(args)
        check_run_args(args, setting)
        if args.dry_run:  # before the lock and the setting file: nothing is written
            return dry_run(setting, paths, args.data_root, runners.default_launch(setting, args.gpus),
                           args.teacher_checkpoint)
    lock = lock_run_dir(paths)  # noqa: F841 (held until exit)
    setting = settle(paths, make_setting(args), args.report_only)
    workers = args.workers if args.workers is not None else (1 if setting.paper else 2)
    import signal
    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    command = 'python tools/benchmarks/label_efficiency.py ' + ' '.join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if not args.report_only:
        t0 = time.time()
        jobs = build_plan(setting)
        is_done = is_done_fn(paths, setting)
        try:
            only = select_jobs(jobs, args.jobs, is_done) if args.jobs else None
        except ValueError as err:
            raise SystemExit(f'error: {err}') from err
        done_before = {j.id for j in jobs if is_done(j.id)}
        finished, failed, interrupted = [], {}, True
        try:
            finished, failed = run_jobs(jobs, is_done, launcher(args, paths), workers, args.max_jobs,
                                        progress=not args.no_progress, only=only)
            interrupted = False
        finally:  # an interrupted invocation (SIGTERM, Ctrl-C) counts its wall time and its finished jobs too
            record_invocation(paths, dict(
                started=t0, seconds=time.time() - t0, workers=workers,
                jobs_run=len([j for j in jobs if j.id not in done_before and is_done(j.id)]) if interrupted
                else len(finished), failed=sorted(failed), command=command, **({'interrupted': True}
                                                                                 if interrupted else {})))
        print(f'\n{len(finished)} jobs run in {(time.time() - t0) / 60:.1f} min; {len(failed)} failed or blocked')
        for jid, why in sorted(failed.items()):
            print(f'  {jid}: {why}')
    text = write_report(paths, setting, command, args.md)
    print('\n' + text)
    return 1 if (not args.report_only and failed) else 0

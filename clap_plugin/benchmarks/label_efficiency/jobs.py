"""Runners of the job kinds of :mod:`.plan`. Each returns the job's record (a JSON-able dict).

Training and export go through the repository's tools (``tools/train.py``, ``tools/export_pretrained.py``, ...)
as subprocesses, so the benchmark runs exactly what a user runs; their output is appended to the job's log.
"""
import glob
import json
import math
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from .arms import ARMS, FINETUNE_CONFIG
from .curves import ceiling_summary, ladder_convergence
from .plan import Job, RunPaths, encoder_job, fraction_tag
from .setting import Setting

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))
METRIC_PREFIX = 'NuScenes metric/pred_instances_3d_NuScenes/'


class JobError(RuntimeError):
    """A job failed; the message names the command and its log."""


def run_tool(args: Sequence[str], log_path: str) -> None:
    """Run ``python ARGS`` from the repository root with one intra-op thread, appending its output to the log."""
    cmd = [sys.executable] + [str(a) for a in args]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'), PYTHONPATH=REPO)
    with open(log_path, 'a') as log:
        log.write(f'\n$ {" ".join(cmd)}\n')
        log.flush()
        proc = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise JobError(f'{" ".join(cmd[1:3])} ... exited with {proc.returncode}; see {log_path}')


def read_record(paths: RunPaths, job_id: str) -> Dict:
    with open(paths.record(job_id)) as f:
        return json.load(f)


def fresh_dir(path: str) -> str:
    """An empty directory at ``path`` (what a killed earlier attempt left there is removed)."""
    if osp.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    return path


def scalars(work_dir: str) -> List[Dict]:
    """The rows of mmengine's ``vis_data/scalars.json`` of the (only) run in ``work_dir``."""
    found = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not found:
        raise JobError(f'no vis_data/scalars.json under {work_dir}')
    with open(found[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def val_metrics(rows: List[Dict]) -> List[Dict]:
    """(step, mAP, NDS) of every validation in the rows, in order."""
    out = []
    for r in rows:
        if METRIC_PREFIX + 'mAP' in r:
            out.append(dict(step=int(r['step']), mAP=float(r[METRIC_PREFIX + 'mAP']),
                            NDS=float(r[METRIC_PREFIX + 'NDS'])))
    return out


def _median(values: List[float]) -> float:
    v = sorted(values)
    return float(v[len(v) // 2]) if v else float('nan')


def train_timing(rows: List[Dict]) -> Dict[str, float]:
    """Median seconds per training iteration and per data load, from the logged training rows."""
    train = [r for r in rows if 'loss' in r and 'time' in r]
    return dict(sec_per_iter=_median([r['time'] for r in train]), data_sec=_median([r['data_time'] for r in train]))


# ---------------------------------------------------------------------------------------------------- data
def finetune_point_cloud_range() -> Optional[List[float]]:
    """The ``point_cloud_range`` of the fine-tune config's ``ObjectRangeFilter`` (None if it has none)."""
    cfg = Config.fromfile(osp.join(REPO, FINETUNE_CONFIG))
    step = next((t for t in cfg.train_pipeline if t['type'] == 'ObjectRangeFilter'), None)
    return None if step is None else [float(v) for v in step['point_cloud_range']]


def object_counts(data: Dict, split: str, fractions_seeds: Sequence[Tuple[float, int]] = ()) -> Dict:
    """Distinct objects and boxes per class (:mod:`.objects`) of the ``split`` info file: ``{'all': counts}`` and,
    for each (fraction, seed), ``{'f<fraction>-s<seed>': counts}`` of the labelled subset. The boxes kept are those
    the fine-tune config trains on (valid flag, range filter before augmentation). A data root without readable
    nuScenes tables gives ``{'error': message}`` instead: the counts are a statistic of the run, not a step of it."""
    from .objects import InfoObjects
    try:
        objects = InfoObjects.load(data['data_root'], data['version'], split)
        pcr = finetune_point_cloud_range()
        out = dict(all=objects.count(point_cloud_range=pcr).to_json())
        for fraction, seed in fractions_seeds:
            out[f'{fraction_tag(fraction)}-s{seed}'] = objects.labelled_subset(
                fraction, seed, point_cloud_range=pcr).to_json()
        return out
    except (OSError, KeyError, ValueError) as err:
        return dict(error=f'{type(err).__name__}: {err}')


def labelled_objects(data: Dict, fraction: float, seed: int) -> Dict:
    """Object counts of the labelled train subset at (fraction, seed), or ``{'error': ...}``."""
    counts = object_counts(data, 'train', [(fraction, seed)])
    return counts.get(f'{fraction_tag(fraction)}-s{seed}', counts)


def run_data(job: Job, setting: Setting, paths: RunPaths, log: str, data_root: Optional[str] = None) -> Dict:
    if data_root is not None:  # reuse a set made before (it must have its info files)
        for name in ('nuscenes_infos_train.pkl', 'nuscenes_infos_val.pkl'):
            if not osp.isfile(osp.join(data_root, name)):
                raise JobError(f'--data-root {data_root}: {name} is missing (run tools/create_data.py first)')
        version = 'v1.0-trainval' if osp.isdir(osp.join(data_root, 'v1.0-trainval')) else 'v1.0-mini'
        record = dict(data_root=osp.abspath(data_root) + '/', version=version, generated=False)
    else:
        root = paths.data_root
        if osp.isdir(osp.dirname(root.rstrip('/'))):
            shutil.rmtree(osp.dirname(root.rstrip('/')))
        version = 'v1.0-trainval'
        t0 = time.time()
        lo, hi = setting.objects_per_class
        run_tool(['tools/create_synthetic_nuscenes.py', '--root', root, '--version', version, '--scenes',
                  setting.scenes, '--samples-per-scene', setting.samples_per_scene, '--seed', setting.data_seed,
                  '--sweeps', setting.sweeps, '--objects-per-class', lo, hi, '--no-progress'] +
                 ([] if setting.val_scenes is None else ['--val-scenes', setting.val_scenes]), log)
        generate_seconds = time.time() - t0
        run_tool(['tools/create_data.py', 'nuscenes', '--root-path', root, '--out-dir', root, '--extra-tag',
                  'nuscenes', '--version', version, '--max-sweeps', 10], log)
        record = dict(data_root=root, version=version, generated=True, generate_seconds=generate_seconds,
                      seconds=time.time() - t0)
    record['objects'] = dict(train=object_counts(record, 'train'), val=object_counts(record, 'val'))
    return record


def run_teacher(job: Job, setting: Setting, paths: RunPaths, log: str) -> Dict:
    """The frozen 2D teacher of PPKT / CMCR, on scenes of a seed of their own (disjoint from the 3D data)."""
    root = paths.teacher_root
    if osp.isdir(osp.dirname(root.rstrip('/'))):
        shutil.rmtree(osp.dirname(root.rstrip('/')))
    t0 = time.time()
    scenes = min(int(setting.teacher_scenes), 10)  # the official mini split has 10 scenes
    run_tool(['tools/create_synthetic_nuscenes.py', '--root', root, '--version', 'v1.0-mini', '--scenes', scenes,
              '--samples-per-scene', setting.teacher_samples_per_scene, '--seed', 1011 + setting.data_seed,
              '--sweeps', 0, '--image-size', 704, 396, '--save-gt-maps', '--no-progress'], log)
    os.makedirs(osp.dirname(paths.teacher_ckpt), exist_ok=True)
    run_tool(['tools/train_2d_teacher.py', '--data-root', root, '--out', paths.teacher_ckpt, '--iters',
              setting.teacher_iters, '--val-scenes', max(1, scenes // 5), '--seed', setting.data_seed], log)
    miou = None
    with open(log) as f:
        for line in f:
            if 'mIoU' in line:
                for tok in line.replace('=', ' ').replace(':', ' ').split():
                    try:
                        miou = float(tok)
                    except ValueError:
                        continue
    return dict(checkpoint=paths.teacher_ckpt, held_out_miou=miou, seconds=time.time() - t0)


# ------------------------------------------------------------------------------------------------ pretrain
def stage_of(job: Job):
    return next(s for s in ARMS[job.arm].stages if s.name == job.stage)


def stage_config(job: Job, paths: RunPaths) -> str:
    """The stage's config; for a distilling method a copy with ``model.teacher_checkpoint`` set."""
    stage = stage_of(job)
    if not stage.needs_teacher:
        return stage.config
    cfg = Config.fromfile(osp.join(REPO, stage.config))
    cfg.model.teacher_checkpoint = paths.teacher_ckpt
    out = osp.join(paths.out, 'configs', f'{stage.name}.py')
    os.makedirs(osp.dirname(out), exist_ok=True)
    tmp = out + '.tmp.py'
    cfg.dump(tmp)
    os.replace(tmp, out)
    return out


def run_pretrain(job: Job, setting: Setting, paths: RunPaths, log: str, data: Dict) -> Dict:
    stage = stage_of(job)
    work = fresh_dir(paths.work(job.id))
    t0 = time.time()
    opts = [f'data_root={data["data_root"]}', f'train_cfg.max_epochs={setting.pretrain_epochs}',
            'randomness.seed=0']
    if stage.needs_teacher:
        opts.append(f'model.teacher_checkpoint={paths.teacher_ckpt}')
    run_tool(['tools/train.py', stage.config, '--work-dir', work, '--cfg-options'] + opts, log)
    ckpt = osp.join(work, f'epoch_{setting.pretrain_epochs}.pth')
    if not osp.isfile(ckpt):
        raise JobError(f'pre-training wrote no {ckpt}; see {log}')
    seconds = time.time() - t0
    rows = scalars(work)
    losses = [{k: v for k, v in r.items() if k.startswith('loss')} for r in rows if 'loss' in r]
    out = paths.encoders(stage.name)
    os.makedirs(osp.dirname(out), exist_ok=True)
    # BN statistics re-estimated on every training sample (--bn-batches 0)
    run_tool(['tools/export_pretrained.py', ckpt, out, '--bn-stats', 'recompute', '--config',
              stage_config(job, paths), '--data-root', data['data_root'], '--bn-batches', '0'], log)
    return dict(arm=job.arm, stage=stage.name, config=stage.config, checkpoint=ckpt, encoders=out,
                pretrain_seconds=seconds, seconds=time.time() - t0, **train_timing(rows),
                first_losses=losses[0] if losses else {}, last_losses=losses[-1] if losses else {})


def run_merge(job: Job, setting: Setting, paths: RunPaths, log: str) -> Dict:
    lidar, camera = (read_record(paths, f'pretrain-{s.name}')['encoders'] for s in ARMS[job.arm].stages)
    out = paths.encoders(job.arm)
    run_tool(['tools/merge_pretrained.py', lidar, camera, out], log)
    return dict(arm=job.arm, encoders=out, halves=[lidar, camera])


# ------------------------------------------------------------------------------------------------ finetune
def finetune_options(setting: Setting, data: Dict, fraction: float, seed: int, iters: int, val_interval: int,
                     load_from: Optional[str]) -> List[str]:
    """``--cfg-options`` of a CPU-tiny fine-tune: the fraction's seeded subset, a constant learning rate after
    the warm-up (cosine to eta_min = lr), so that a run of N iterations is the first N of a longer one, the
    setting's heatmap prior, and the decoded images cached in memory."""
    cfg = Config.fromfile(osp.join(REPO, FINETUNE_CONFIG))
    lr = cfg.optim_wrapper.optimizer.lr
    warmup = cfg.param_scheduler[0].end
    cache = int(setting.image_cache_mb) * 2**20
    opts = [f'data_root={data["data_root"]}', f'nus_version={data["version"]}', f'label_fraction={fraction}',
            f'label_fraction_seed={seed}', f'randomness.seed={seed}', f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={val_interval}', f'param_scheduler.1.end={max(iters, warmup + 1)}',
            f'param_scheduler.1.eta_min={lr}', f'default_hooks.checkpoint.interval={iters}',
            'default_hooks.checkpoint.max_keep_ckpts=1', 'default_hooks.logger.log_metric_by_epoch=False',
            f'model.bbox_head.heatmap_prior_prob={setting.heatmap_prior_prob}',
            f'train_dataloader.dataset.dataset.pipeline.0.cache_bytes={cache}',
            f'val_dataloader.dataset.pipeline.0.cache_bytes={cache}']
    if load_from:
        opts.append(f'load_from={load_from}')
    return opts


def choose_iterations(curve: List[Dict], ladder: Sequence[int]) -> Dict:
    """The ladder rung where scratch's val mAP is highest (the first of equals); ``at_cap`` when that is the
    longest rung (scratch was still improving: the ladder should go further)."""
    rungs = [c for c in curve if c['step'] in set(ladder)]
    if len(rungs) != len(ladder):
        raise JobError(f'ladder validations at {[c["step"] for c in curve]}, expected {list(ladder)}')
    best = max(rungs, key=lambda c: (c['mAP'], -c['step']))
    return dict(iterations=best['step'], at_cap=best['step'] == max(ladder))


def run_ladder(job: Job, setting: Setting, paths: RunPaths, log: str, data: Dict) -> Dict:
    work = fresh_dir(paths.work(job.id))
    ladder = list(setting.ladder)
    interval = math.gcd(*ladder) if len(ladder) > 1 else ladder[0]
    t0 = time.time()
    run_tool(['tools/train.py', FINETUNE_CONFIG, '--work-dir', work, '--cfg-options'] + finetune_options(
        setting, data, job.fraction, job.seed, ladder[-1], interval, None), log)
    rows = scalars(work)
    curve = val_metrics(rows)
    choice = choose_iterations(curve, ladder)
    convergence = asdict(ladder_convergence(curve, ladder))  # saturated by the 5 % rule, or the cap that stopped it
    shutil.rmtree(work, ignore_errors=True)  # checkpoints are not needed any more; the record has the curve
    return dict(arm='scratch', fraction=job.fraction, seed=job.seed, curve=curve, ladder=ladder, **choice,
                **convergence, seconds=time.time() - t0, **train_timing(rows),
                labelled_objects=labelled_objects(data, job.fraction, job.seed))


def run_ceiling(job: Job, setting: Setting, paths: RunPaths, log: str, data: Dict) -> Dict:
    """Scratch with every train sample labelled (seed 0), validated every ``ceiling_interval`` iterations up to
    ``ceiling_max_iters``, with the ladder's fine-tune options: what the detector can learn on this data. The
    record has the curve, the best validation and the 5 % saturation rule's verdict (:mod:`.curves`)."""
    work = fresh_dir(paths.work(job.id))
    t0 = time.time()
    iters, interval = int(setting.ceiling_max_iters), int(setting.ceiling_interval)
    run_tool(['tools/train.py', FINETUNE_CONFIG, '--work-dir', work, '--cfg-options'] + finetune_options(
        setting, data, job.fraction, job.seed, iters, interval, None), log)
    rows = scalars(work)
    try:
        summary = ceiling_summary(val_metrics(rows), interval, iters)
    except ValueError as err:
        raise JobError(f'{err}; see {log}') from err
    shutil.rmtree(work, ignore_errors=True)
    return dict(arm='scratch', fraction=job.fraction, seed=job.seed, max_iters=iters, interval=interval,
                **asdict(summary), seconds=time.time() - t0, **train_timing(rows),
                labelled_objects=labelled_objects(data, job.fraction, job.seed))


def arm_encoders(paths: RunPaths, arm: str) -> Optional[str]:
    enc = encoder_job(arm)
    return None if enc is None else read_record(paths, enc)['encoders']


def run_finetune(job: Job, setting: Setting, paths: RunPaths, log: str, data: Dict) -> Dict:
    iters = int(read_record(paths, 'ladder')['iterations'])
    work = fresh_dir(paths.work(job.id))
    t0 = time.time()
    run_tool(['tools/train.py', FINETUNE_CONFIG, '--work-dir', work, '--cfg-options'] + finetune_options(
        setting, data, job.fraction, job.seed, iters, iters, arm_encoders(paths, job.arm)), log)
    rows = scalars(work)
    curve = val_metrics(rows)
    if not curve or curve[-1]['step'] != iters:
        raise JobError(f'no validation at iteration {iters} in {work}')
    shutil.rmtree(work, ignore_errors=True)
    return dict(arm=job.arm, fraction=job.fraction, seed=job.seed, iterations=iters, mAP=curve[-1]['mAP'],
                NDS=curve[-1]['NDS'], seconds=time.time() - t0, **train_timing(rows),
                labelled_objects=labelled_objects(data, job.fraction, job.seed))

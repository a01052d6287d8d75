"""Runners of the job kinds of :mod:`.plan`. Each returns the job's record (a JSON-able dict).

Training and export go through the repository's tools (``tools/train.py``, ``tools/export_pretrained.py``, ...)
as subprocesses, so the benchmark runs exactly what a user runs; their output is appended to the job's log.
Under the paper protocol every training job goes through ``bash tools/dist_train.sh CONFIG GPUS`` (:class:`Launch`).
The command lines come from pure functions (``*_command`` / ``*_options``), which ``--dry-run`` prints.
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
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from .arms import ARMS, FINETUNE_CONFIG, finetune_config
from .curves import SATURATION_GAIN, ceiling_summary, ladder_convergence, ladder_rungs
from .plan import Job, RunPaths, encoder_job, fraction_tag
from .setting import Setting
from .variant import apply_variant, get_variant, write_variant_config

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))
METRIC_PREFIX = 'NuScenes metric/pred_instances_3d_NuScenes/'


class JobError(RuntimeError):
    """A job failed; the message names the command and its log."""


@dataclass(frozen=True)
class Launch:
    """How the training jobs run: one ``python tools/train.py`` process (``gpus`` None: protocol cpu-tiny), or
    ``bash tools/dist_train.sh CONFIG GPUS`` with ``--auto-scale-lr`` (protocol paper: the configs' lr is for
    their base batch of 8 GPUs x 4 samples, scaled linearly to ``GPUS`` x 4; a factor 1 on 8 GPUs)."""
    gpus: Optional[int] = None

    def train(self, config: str, work: str, opts: Sequence[str]) -> List[str]:
        """The tool arguments of one training run (``--cfg-options`` last)."""
        if self.gpus is None:
            return ['tools/train.py', config, '--work-dir', work, '--cfg-options'] + list(opts)
        return ['tools/dist_train.sh', config, str(self.gpus), '--work-dir', work, '--auto-scale-lr',
                '--cfg-options'] + list(opts)


def default_launch(setting: Setting, gpus: Optional[int] = None) -> Launch:
    """The setting's launch: single process for cpu-tiny; ``gpus`` (default 8) per job for the paper protocol."""
    if not setting.paper:
        if gpus is not None:
            raise ValueError(f'--gpus {gpus} applies to the paper protocol only (protocol {setting.protocol} runs '
                             'one CPU process per job)')
        return Launch()
    gpus = 8 if gpus is None else int(gpus)
    if gpus < 1:
        raise ValueError(f'--gpus must be >= 1, got {gpus}')
    return Launch(gpus)


def tool_command(args: Sequence[str]) -> List[str]:
    """The full command line of a repository tool: ``bash TOOL.sh ...`` for a shell script, else
    ``python TOOL.py ...`` with this interpreter."""
    args = [str(a) for a in args]
    return (['bash'] if args[0].endswith('.sh') else [sys.executable]) + args


def tool_env() -> Dict[str, str]:
    """The environment of a tool: one intra-op thread unless set, the repository importable, and this interpreter
    for ``tools/dist_train.sh`` (its ``PYTHON``) unless set."""
    return dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'), PYTHONPATH=REPO,
                PYTHON=os.environ.get('PYTHON', sys.executable))


def run_tool(args: Sequence[str], log_path: str) -> None:
    """Run the tool (:func:`tool_command`) from the repository root with one intra-op thread, appending its output
    to the log."""
    cmd = tool_command(args)
    env = tool_env()
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
def finetune_point_cloud_range(config: str = FINETUNE_CONFIG,
                               variant: Optional[str] = None) -> Optional[List[float]]:
    """The ``point_cloud_range`` of the fine-tune config's ``ObjectRangeFilter`` (None if it has none), with the
    model ``variant`` (:mod:`.variant`) applied."""
    cfg = Config.fromfile(osp.join(REPO, config))
    if variant is not None:
        cfg = apply_variant(cfg, get_variant(variant))
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
        pcr = data.get('point_cloud_range') or finetune_point_cloud_range(finetune_config(data.get('protocol',
                                                                                                   'cpu-tiny')))
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


INFO_FILES = ('nuscenes_infos_train.pkl', 'nuscenes_infos_val.pkl')


def data_location(setting: Setting, paths: RunPaths, data_root: Optional[str] = None) -> Dict:
    """``{'data_root', 'version', 'protocol', 'generated'}`` of the run, from the arguments alone (nothing is read
    but whether the version folder exists): ``--data-root`` as given (v1.0-trainval when it has that folder, else
    v1.0-mini; always v1.0-trainval under the paper protocol), else the synthetic v1.0-trainval set under ``OUT``."""
    if data_root is None:
        if setting.paper:
            raise JobError('protocol paper trains on real nuScenes: give --data-root (a converted v1.0-trainval '
                           'tree); nothing is generated')
        return dict(data_root=paths.data_root, version='v1.0-trainval', protocol=setting.protocol, generated=True)
    trainval = setting.paper or osp.isdir(osp.join(data_root, 'v1.0-trainval'))
    return dict(data_root=osp.abspath(data_root) + '/', version='v1.0-trainval' if trainval else 'v1.0-mini',
                protocol=setting.protocol, generated=False)


def run_point_cloud_range(setting: Setting) -> Optional[List[float]]:
    """The range the run's fine-tunes keep boxes in (the variant's); the object counts use it."""
    return finetune_point_cloud_range(finetune_config(setting.protocol),
                                      None if setting.paper else setting.variant)


def data_problems(setting: Setting, data_root: str) -> List[str]:
    """What a given ``--data-root`` lacks for the run (the info files; under the paper protocol the
    v1.0-trainval tables); empty when it has everything."""
    missing = [f'{name} is missing (run tools/create_data.py first)' for name in INFO_FILES
               if not osp.isfile(osp.join(data_root, name))]
    if setting.paper and not osp.isdir(osp.join(data_root, 'v1.0-trainval')):
        missing.append('v1.0-trainval/ is missing (the paper protocol trains and evaluates on v1.0-trainval)')
    source = None if setting.paper else get_variant(setting.variant).source_size
    if source is not None:
        size = camera_image_size(data_root)
        if size is not None and tuple(size) != tuple(source):
            missing.append(f'its camera images are {size[0]} x {size[1]}, the variant {setting.variant} expects '
                           f'{source[0]} x {source[1]} (tools/create_synthetic_nuscenes.py --image-size)')
    return missing


def camera_image_size(data_root: str) -> Optional[Tuple[int, int]]:
    """(W, H) of the first front-camera image under ``data_root/samples/CAM_FRONT`` (None if there is none)."""
    import cv2
    folder = osp.join(data_root, 'samples', 'CAM_FRONT')
    names = sorted(os.listdir(folder)) if osp.isdir(folder) else []
    if not names:
        return None
    img = cv2.imread(osp.join(folder, names[0]), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise JobError(f'{osp.join(folder, names[0])}: not an image that OpenCV can read')
    return int(img.shape[1]), int(img.shape[0])


def data_commands(setting: Setting, paths: RunPaths) -> List[List[str]]:
    """The tool arguments that make the synthetic set (protocol cpu-tiny without ``--data-root``)."""
    root, version = paths.data_root, 'v1.0-trainval'
    lo, hi = setting.objects_per_class
    generate = ['tools/create_synthetic_nuscenes.py', '--root', root, '--version', version, '--scenes',
                setting.scenes, '--samples-per-scene', setting.samples_per_scene, '--seed', setting.data_seed,
                '--sweeps', setting.sweeps, '--objects-per-class', lo, hi, '--no-progress'] + (
                    [] if setting.val_scenes is None else ['--val-scenes', setting.val_scenes])
    source = get_variant(setting.variant).source_size
    if source is not None:  # the camera images at the size the variant's augmentation expects
        generate += ['--image-size', source[0], source[1]]
    convert = ['tools/create_data.py', 'nuscenes', '--root-path', root, '--out-dir', root, '--extra-tag',
               'nuscenes', '--version', version, '--max-sweeps', 10]
    return [generate, convert]


def clear_parent(root: str) -> None:
    """Remove the folder holding a generated data ``root`` (``.../<name>/nuscenes/``), so that a rerun of its
    job starts from nothing."""
    parent = osp.dirname(root.rstrip('/'))
    if osp.isdir(parent):
        shutil.rmtree(parent)


def run_data(job: Job, setting: Setting, paths: RunPaths, log: str, data_root: Optional[str] = None) -> Dict:
    record = data_location(setting, paths, data_root)
    record['point_cloud_range'] = run_point_cloud_range(setting)
    if data_root is not None:  # reuse a set made before (it must have its info files)
        problems = data_problems(setting, data_root)
        if problems:
            raise JobError(f'--data-root {data_root}: ' + '; '.join(problems))
    else:
        clear_parent(paths.data_root)
        t0 = time.time()
        generate, convert = data_commands(setting, paths)
        run_tool(generate, log)
        generate_seconds = time.time() - t0
        run_tool(convert, log)
        record.update(generate_seconds=generate_seconds, seconds=time.time() - t0)
    record['objects'] = dict(train=object_counts(record, 'train'), val=object_counts(record, 'val'))
    return record


def teacher_commands(setting: Setting, paths: RunPaths) -> List[List[str]]:
    """The tool arguments that make and train the synthetic 2D teacher (protocol cpu-tiny)."""
    root = paths.teacher_root
    scenes = min(int(setting.teacher_scenes), 10)  # the official mini split has 10 scenes
    generate = ['tools/create_synthetic_nuscenes.py', '--root', root, '--version', 'v1.0-mini', '--scenes', scenes,
                '--samples-per-scene', setting.teacher_samples_per_scene, '--seed', 1011 + setting.data_seed,
                '--sweeps', 0, '--image-size', 704, 396, '--save-gt-maps', '--no-progress']
    train = ['tools/train_2d_teacher.py', '--data-root', root, '--out', paths.teacher_ckpt, '--iters',
             setting.teacher_iters, '--val-scenes', max(1, scenes // 5), '--seed', setting.data_seed]
    return [generate, train]


def run_teacher(job: Job, setting: Setting, paths: RunPaths, log: str,
                teacher_checkpoint: Optional[str] = None) -> Dict:
    """The frozen 2D teacher of PPKT / CMCR: under the paper protocol the given ``--teacher-checkpoint``, copied
    into the run; otherwise trained on synthetic scenes of a seed of their own (disjoint from the 3D data)."""
    if setting.paper:
        if not teacher_checkpoint or not osp.isfile(teacher_checkpoint):
            raise JobError(f'--teacher-checkpoint {teacher_checkpoint!r} is not a file (PPKT and CMCR distil a 2D '
                           'network learnt on 2D data; the paper protocol trains none)')
        os.makedirs(osp.dirname(paths.teacher_ckpt), exist_ok=True)
        tmp = paths.teacher_ckpt + '.tmp'
        shutil.copyfile(teacher_checkpoint, tmp)
        os.replace(tmp, paths.teacher_ckpt)
        return dict(checkpoint=paths.teacher_ckpt, source=osp.abspath(teacher_checkpoint),
                    bytes=osp.getsize(paths.teacher_ckpt), held_out_miou=None)
    clear_parent(paths.teacher_root)
    t0 = time.time()
    generate, train = teacher_commands(setting, paths)
    run_tool(generate, log)
    os.makedirs(osp.dirname(paths.teacher_ckpt), exist_ok=True)
    run_tool(train, log)
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


def writes_configs(setting: Setting) -> bool:
    """Whether the run writes its own configs (a model variant other than the CPU-tiny one, or EMA weights for
    validation): then every training job reads a copy under ``OUT/configs`` (:mod:`.variant`)."""
    return not setting.paper and (not get_variant(setting.variant).identity or setting.ema_momentum is not None)


def export_config_path(job: Job, setting: Setting, paths: RunPaths) -> str:
    """The config the stage pre-trains and exports with: the stage's own, or a copy under ``OUT/configs``
    (written by :func:`stage_config`) with ``model.teacher_checkpoint`` set for a distilling method and the
    setting's model variant applied."""
    stage = stage_of(job)
    if not stage.needs_teacher and (setting.paper or get_variant(setting.variant).identity):
        return stage.config_of(setting.protocol)
    return osp.join(paths.out, 'configs', f'{stage.name}.py')


def pretrain_config_path(job: Job, setting: Setting, paths: RunPaths) -> str:
    """The config the stage pre-trains with: the stage's own (a distilling method gets its teacher as an option),
    or under a model variant the copy of :func:`stage_config`."""
    stage = stage_of(job)
    if setting.paper or get_variant(setting.variant).identity:
        return stage.config_of(setting.protocol)
    return export_config_path(job, setting, paths)


def stage_config(job: Job, setting: Setting, paths: RunPaths) -> str:
    """:func:`export_config_path`, writing the copy (teacher set, variant applied) when there is one."""
    stage = stage_of(job)
    out = export_config_path(job, setting, paths)
    if out == stage.config_of(setting.protocol):
        return out
    options = dict(model=dict(teacher_checkpoint=paths.teacher_ckpt)) if stage.needs_teacher else None
    return write_variant_config(osp.join(REPO, stage.config_of(setting.protocol)),
                                get_variant('cpu-tiny' if setting.paper else setting.variant), out, options)


def finetune_run_config(setting: Setting, paths: RunPaths) -> str:
    """The fine-tune config of the run's ceiling, ladder, fine-tunes and probes: the protocol's, or its copy under
    ``OUT/configs/finetune.py`` (:func:`write_finetune_config`) when the run writes its configs."""
    if not writes_configs(setting):
        return finetune_config(setting.protocol)
    return osp.join(paths.out, 'configs', 'finetune.py')


def ema_hook(momentum: float) -> Dict:
    """mmengine's ``EMAHook``: validation (and the saved checkpoints' ``ema_state_dict``) use the exponential
    moving average of the weights, parameters and BN statistics, ``avg = (1 - m) avg + m w`` every iteration."""
    return dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=float(momentum),
                update_buffers=True, priority=49)


def _write_run_finetune_config(setting: Setting, out: str, extra_hooks: Sequence[Dict] = ()) -> str:
    """Write the protocol's fine-tune config to ``out`` with the run's variant applied and its custom hooks
    extended by the EMA hook (when ``setting.ema_momentum`` is set) and ``extra_hooks``."""
    source = osp.join(REPO, finetune_config(setting.protocol))
    hooks = list(extra_hooks)
    if setting.ema_momentum is not None:
        hooks.insert(0, ema_hook(setting.ema_momentum))
    options = None
    if hooks:
        options = dict(custom_hooks=list(Config.fromfile(source).get('custom_hooks', [])) + hooks)
    return write_variant_config(source, get_variant(setting.variant), out, options)


def write_finetune_config(setting: Setting, paths: RunPaths) -> str:
    """Write :func:`finetune_run_config` (the variant applied, the EMA hook added) if the run writes its
    configs; returns its path either way."""
    out = finetune_run_config(setting, paths)
    if out == finetune_config(setting.protocol):
        return out
    return _write_run_finetune_config(setting, out)


def ladder_run_config(setting: Setting, paths: RunPaths) -> str:
    """The ladder's config: :func:`finetune_run_config`, or when the run writes its configs a copy of it under
    ``OUT/configs/ladder.py`` with a :class:`~clap_plugin.engine.hooks.SaturationStopHook` on the ladder's rungs."""
    if not writes_configs(setting):
        return finetune_config(setting.protocol)
    return osp.join(paths.out, 'configs', 'ladder.py')


def saturation_stop_hook(setting: Setting) -> Dict:
    """The hook that ends the ladder at the first rung improving val mAP by less than 5 % relative."""
    return dict(type='SaturationStopHook', rungs=[int(r) for r in setting.ladder], gain=SATURATION_GAIN)


def write_ladder_config(setting: Setting, paths: RunPaths) -> str:
    """Write :func:`ladder_run_config` (the run's fine-tune config plus the stop hook) if the run writes its
    configs; returns its path either way."""
    out = ladder_run_config(setting, paths)
    if out == finetune_config(setting.protocol):
        return out
    return _write_run_finetune_config(setting, out, [saturation_stop_hook(setting)])


def pretrain_command(job: Job, setting: Setting, paths: RunPaths, data: Dict, launch: Launch) -> List[str]:
    """The tool arguments of a stage's pre-training (``setting.pretrain_epochs`` epochs, seed 0)."""
    stage = stage_of(job)
    opts = [f'data_root={data["data_root"]}', f'train_cfg.max_epochs={setting.pretrain_epochs}',
            'randomness.seed=0']
    if stage.needs_teacher:
        opts.append(f'model.teacher_checkpoint={paths.teacher_ckpt}')
    return launch.train(pretrain_config_path(job, setting, paths), paths.work(job.id), opts)


def pretrain_checkpoint(job: Job, setting: Setting, paths: RunPaths) -> str:
    return osp.join(paths.work(job.id), f'epoch_{setting.pretrain_epochs}.pth')


def export_command(job: Job, setting: Setting, paths: RunPaths, data: Dict) -> List[str]:
    """The tool arguments of a stage's export: BN statistics re-estimated on ``setting.export_bn_batches``
    training samples (0: every one)."""
    return ['tools/export_pretrained.py', pretrain_checkpoint(job, setting, paths), paths.encoders(job.stage),
            '--bn-stats', 'recompute', '--config', export_config_path(job, setting, paths), '--data-root',
            data['data_root'], '--bn-batches', int(setting.export_bn_batches)]


def run_pretrain(job: Job, setting: Setting, paths: RunPaths, log: str, data: Dict,
                 launch: Optional[Launch] = None) -> Dict:
    stage = stage_of(job)
    work = fresh_dir(paths.work(job.id))
    t0 = time.time()
    stage_config(job, setting, paths)  # the copy with the teacher set / the variant applied, if any
    config = pretrain_config_path(job, setting, paths)
    run_tool(pretrain_command(job, setting, paths, data, launch or default_launch(setting)), log)
    ckpt = pretrain_checkpoint(job, setting, paths)
    if not osp.isfile(ckpt):
        raise JobError(f'pre-training wrote no {ckpt}; see {log}')
    seconds = time.time() - t0
    rows = scalars(work)
    losses = [{k: v for k, v in r.items() if k.startswith('loss')} for r in rows if 'loss' in r]
    out = paths.encoders(stage.name)
    os.makedirs(osp.dirname(out), exist_ok=True)
    run_tool(export_command(job, setting, paths, data), log)
    return dict(arm=job.arm, stage=stage.name, config=config, checkpoint=ckpt,
                encoders=out,
                pretrain_seconds=seconds, seconds=time.time() - t0, **train_timing(rows),
                first_losses=losses[0] if losses else {}, last_losses=losses[-1] if losses else {})


def merge_command(job: Job, paths: RunPaths, halves: Optional[Sequence[str]] = None) -> List[str]:
    """The tool arguments of a UniPAD-style merge (``halves``: the LiDAR and camera exports; default where the
    pre-training jobs write them)."""
    lidar, camera = halves or [paths.encoders(s.name) for s in ARMS[job.arm].stages]
    return ['tools/merge_pretrained.py', lidar, camera, paths.encoders(job.arm)]


def run_merge(job: Job, setting: Setting, paths: RunPaths, log: str) -> Dict:
    lidar, camera = (read_record(paths, f'pretrain-{s.name}')['encoders'] for s in ARMS[job.arm].stages)
    out = paths.encoders(job.arm)
    run_tool(merge_command(job, paths, [lidar, camera]), log)
    return dict(arm=job.arm, encoders=out, halves=[lidar, camera])


# ------------------------------------------------------------------------------------------------ finetune
def finetune_options(setting: Setting, data: Dict, fraction: float, seed: int, iters: int, val_interval: int,
                     load_from: Optional[str]) -> List[str]:
    """``--cfg-options`` of a CPU-tiny fine-tune: the fraction's seeded subset, a constant learning rate after
    the warm-up (cosine to eta_min = lr), so that a run of N iterations is the first N of a longer one, the
    setting's heatmap prior, and the decoded images cached in memory. Under the paper protocol
    :func:`paper_finetune_options` (``iters`` counts epochs)."""
    if setting.paper:
        return paper_finetune_options(setting, data, fraction, seed, iters, val_interval, load_from)
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


def paper_finetune_options(setting: Setting, data: Dict, fraction: float, seed: int, epochs: int, val_interval: int,
                           load_from: Optional[str]) -> List[str]:
    """``--cfg-options`` of a full-size fine-tune: the fraction's seeded subset and BEVFusion's schedule as the
    config has it, stopped after ``epochs`` (its schedulers are epoch-based and converted to iterations with the
    epoch length, so a run of N epochs is the first N of the 20-epoch one), the setting's heatmap prior, and one
    checkpoint kept."""
    cfg = Config.fromfile(osp.join(REPO, finetune_config('paper')))
    schedule = int(cfg.train_cfg.max_epochs)
    if not 1 <= int(epochs) <= schedule:
        raise JobError(f'a paper fine-tune of {epochs} epochs: the schedule of {finetune_config("paper")} ends at '
                       f'epoch {schedule} (setting ladder {list(setting.ladder)})')
    opts = [f'data_root={data["data_root"]}', f'nus_version={data["version"]}', f'label_fraction={fraction}',
            f'label_fraction_seed={seed}', f'randomness.seed={seed}', f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={val_interval}', 'default_hooks.checkpoint.max_keep_ckpts=1',
            f'model.bbox_head.heatmap_prior_prob={setting.heatmap_prior_prob}']
    if load_from:
        opts.append(f'load_from={load_from}')
    return opts


def ladder_command(job: Job, setting: Setting, paths: RunPaths, data: Dict, launch: Launch) -> List[str]:
    """Scratch's ladder: one run to the longest rung, validated every gcd of the rungs; when the run writes its
    configs, its own copy stops the run at the first rung that saturates the curve (:func:`write_ladder_config`)."""
    ladder = list(setting.ladder)
    interval = math.gcd(*ladder) if len(ladder) > 1 else ladder[0]
    return launch.train(ladder_run_config(setting, paths), paths.work(job.id), finetune_options(
        setting, data, job.fraction, job.seed, ladder[-1], interval, None))


def ceiling_command(job: Job, setting: Setting, paths: RunPaths, data: Dict, launch: Launch) -> List[str]:
    iters, interval = int(setting.ceiling_max_iters), int(setting.ceiling_interval)
    return launch.train(finetune_run_config(setting, paths), paths.work(job.id), finetune_options(
        setting, data, job.fraction, job.seed, iters, interval, None))


def finetune_command(job: Job, setting: Setting, paths: RunPaths, data: Dict, launch: Launch, length: int,
                     encoders: Optional[str]) -> List[str]:
    """A fine-tune of ``length`` iterations (epochs under the paper protocol), validated at its end."""
    return launch.train(finetune_run_config(setting, paths), paths.work(job.id), finetune_options(
        setting, data, job.fraction, job.seed, length, length, encoders))


def choose_iterations(curve: List[Dict], ladder: Sequence[int]) -> Dict:
    """The validated ladder rung where scratch's val mAP is highest (the first of equals; a ladder stopped at
    saturation validated the rungs up to it, :func:`.curves.ladder_rungs`); ``at_cap`` when that is the longest
    rung (scratch was still improving: the ladder should go further)."""
    try:
        rungs = ladder_rungs(curve, ladder)
    except ValueError as err:
        raise JobError(str(err)) from err
    best = max(rungs, key=lambda c: (c['mAP'], -c['step']))
    return dict(iterations=best['step'], at_cap=best['step'] == max(ladder))


def run_ladder(job: Job, setting: Setting, paths: RunPaths, log: str, data: Dict,
               launch: Optional[Launch] = None) -> Dict:
    write_ladder_config(setting, paths)
    work = fresh_dir(paths.work(job.id))
    ladder = list(setting.ladder)
    t0 = time.time()
    run_tool(ladder_command(job, setting, paths, data, launch or default_launch(setting)), log)
    rows = scalars(work)
    curve = val_metrics(rows)
    choice = choose_iterations(curve, ladder)
    # saturated by the 5 % rule, or the cap that stopped it
    convergence = asdict(ladder_convergence(curve, ladder, unit=setting.unit))
    shutil.rmtree(work, ignore_errors=True)  # checkpoints are not needed any more; the record has the curve
    return dict(arm='scratch', fraction=job.fraction, seed=job.seed, curve=curve, ladder=ladder, **choice,
                unit=setting.unit,
                **convergence, seconds=time.time() - t0, **train_timing(rows),
                labelled_objects=labelled_objects(data, job.fraction, job.seed))


def run_ceiling(job: Job, setting: Setting, paths: RunPaths, log: str, data: Dict,
                launch: Optional[Launch] = None) -> Dict:
    """Scratch with every train sample labelled (seed 0), validated every ``ceiling_interval`` iterations up to
    ``ceiling_max_iters``, with the ladder's fine-tune options: what the detector can learn on this data. The
    record has the curve, the best validation and the 5 % saturation rule's verdict (:mod:`.curves`)."""
    write_finetune_config(setting, paths)
    work = fresh_dir(paths.work(job.id))
    t0 = time.time()
    iters, interval = int(setting.ceiling_max_iters), int(setting.ceiling_interval)
    run_tool(ceiling_command(job, setting, paths, data, launch or default_launch(setting)), log)
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


def encoder_file(paths: RunPaths, arm: str) -> Optional[str]:
    """Where the arm's encoders are written (None for scratch): its stage's export, or its merge."""
    a = ARMS[arm]
    if not a.pretrained:
        return None
    return paths.encoders(arm if len(a.stages) > 1 else a.stages[0].name)


def ladder_as_finetune(job: Job, ladder: Dict) -> Optional[Dict]:
    """Scratch's fine-tune at the ladder's fraction and seed is the ladder's run up to the chosen rung (same
    config, subset, seed and constant learning rate: a run of N iterations is the first N of a longer one, and the
    validations along the way do not touch the training). Its record is read off the ladder's curve; None for any
    other fine-tune, or a ladder record without that rung."""
    if job.arm != 'scratch' or int(job.seed) != int(ladder['seed']) or \
            abs(float(job.fraction) - float(ladder['fraction'])) > 1e-9:
        return None
    iters = int(ladder['iterations'])
    rung = [c for c in ladder.get('curve', []) if int(c['step']) == iters]
    if not rung:
        return None
    timing = {k: ladder[k] for k in ('sec_per_iter', 'data_sec') if k in ladder}
    return dict(arm='scratch', fraction=float(job.fraction), seed=int(job.seed), iterations=iters,
                unit=ladder.get('unit', 'iterations'), mAP=rung[0]['mAP'], NDS=rung[0]['NDS'], seconds=0.0,
                from_ladder=True, **timing, labelled_objects=ladder.get('labelled_objects'))


def run_finetune(job: Job, setting: Setting, paths: RunPaths, log: str, data: Dict,
                 launch: Optional[Launch] = None) -> Dict:
    ladder = read_record(paths, 'ladder')
    reused = ladder_as_finetune(job, ladder)
    if reused is not None:
        with open(log, 'a') as f:
            f.write(f'{job.id}: the ladder\'s run (seed {ladder["seed"]}, fraction {ladder["fraction"]}) at '
                    f'{reused["iterations"]} {reused["unit"]}: mAP {reused["mAP"]:.4f}, NDS {reused["NDS"]:.4f}\n')
        return reused
    iters = int(ladder['iterations'])
    write_finetune_config(setting, paths)
    work = fresh_dir(paths.work(job.id))
    t0 = time.time()
    run_tool(finetune_command(job, setting, paths, data, launch or default_launch(setting), iters,
                              arm_encoders(paths, job.arm)), log)
    rows = scalars(work)
    curve = val_metrics(rows)
    if not curve or curve[-1]['step'] != iters:
        raise JobError(f'no validation at iteration {iters} in {work}')
    shutil.rmtree(work, ignore_errors=True)
    return dict(arm=job.arm, fraction=job.fraction, seed=job.seed, iterations=iters, unit=setting.unit,
                mAP=curve[-1]['mAP'],
                NDS=curve[-1]['NDS'], seconds=time.time() - t0, **train_timing(rows),
                labelled_objects=labelled_objects(data, job.fraction, job.seed))

"""The sizes of one label-efficiency run, with the presets ``default``, ``smoke``, ``diverse``, ``large`` (CPU-tiny
models on synthetic data) and ``paper`` (the full-size models on real nuScenes, for GPU machines)."""
import dataclasses
import json
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .arms import ARMS, PROTOCOLS
from .variant import get_variant


@dataclass
class Setting:
    """What one benchmark run does. Fields under ``IDENTITY`` fix the experiment: a run directory refuses a
    setting that changes them. Seeds, fractions and arms may grow between runs (a later session adds seeds).

    Data: ``scenes`` synthetic v1.0-trainval scenes of ``samples_per_scene`` keyframes, each with
    ``objects_per_class`` (min, max) annotated objects of every class of its own, and ``sweeps`` LiDAR sweeps
    before each keyframe. ``val_scenes`` of the scenes are official val scenes (the val split), the others train
    scenes; None alternates them (half and half). Every pre-training uses all train samples without labels;
    fine-tuning keeps ``fraction`` of them with labels.

    Model: ``variant`` (:mod:`.variant`) rewrites every config of the run (pre-training and fine-tuning alike) to
    a cheaper input ('cpu-tiny': the configs as they are; 'cpu-bench': 64 x 192 images, +-32.4 m, keyframe points
    only). ``ema_momentum`` (None: off) validates the exponential moving average of the fine-tuned weights
    (mmengine's ``EMAHook``), which smooths the jumps of a constant-lr run between validations and keeps a run of
    N iterations the first N of a longer one. ``finetune_fractions`` (None: all) are the label fractions at which
    the fine-tune arms are fully fine-tuned; the probe covers every fraction.
    Probe length: ``probe_ladder`` (empty: ``probe_iters`` head iterations for every probe) are the rungs of the
    scratch probe's curve (the ladder fraction, seed 0), one head scored after each rung; the probe length is the
    rung the ladder's rule picks on it (:func:`.jobs.choose_iterations`, with the 5 % saturation verdict), and every
    arm's probes train that long.
    ``heatmap_prior_prob`` is the detector head's dense heatmap prior (``bbox_head.heatmap_prior_prob``,
    None: off), set on every probe and fine-tune. Probe: ``probe_version`` 2 standardises the frozen maps per
    channel before the head (scale-invariant); 1 feeds them raw (the probe of runs made before the field existed).

    Ceiling: once per run, scratch with every train sample labelled (seed 0) is fine-tuned for
    ``ceiling_max_iters`` iterations with a validation every ``ceiling_interval`` (a multiple of it), the same
    schedule as the ladder (constant lr after the warm-up): the curve shows what the detector can learn here.

    Protocol: ``cpu-tiny`` (the CPU-tiny configs, one process per job, synthetic data generated here) or ``paper``
    (the full-size configs of :mod:`.arms`, every training job through ``tools/dist_train.sh``, real nuScenes given
    with ``--data-root``). Under ``paper`` the ``ladder`` counts epochs of BEVFusion's fine-tune schedule (the
    fine-tune config's, truncated, never rescaled), ``pretrain_epochs`` should be the pre-training configs' own
    12, the data fields and the teacher fields are unused (the 2D teacher is a given checkpoint), and there is no
    ceiling, probe or pretext job. ``export_bn_batches`` is the number of training samples on which the export
    re-estimates the BN statistics (0: all of them).
    """
    scenes: int = 10
    samples_per_scene: int = 6
    sweeps: int = 2
    objects_per_class: Tuple[int, int] = (1, 2)
    val_scenes: Optional[int] = None
    data_seed: int = 0
    teacher_scenes: int = 10
    teacher_samples_per_scene: int = 4
    teacher_iters: int = 600
    pretrain_epochs: int = 4
    ladder: Tuple[int, ...] = (20, 40, 80)
    probe_iters: int = 100
    probe_ladder: Tuple[int, ...] = ()
    probe_lr: float = 1e-3
    ceiling_max_iters: int = 1200
    ceiling_interval: int = 100
    probe_version: int = 2
    heatmap_prior_prob: Optional[float] = 0.1
    image_cache_mb: int = 2048
    pretext_samples: int = 6
    fractions: Tuple[float, ...] = (0.1, 0.25)
    seeds: Tuple[int, ...] = (0, 1, 2)
    probe_arms: Tuple[str, ...] = tuple(ARMS)
    finetune_arms: Tuple[str, ...] = ('scratch', 'unipad', 'joint_curvature', 'clap')
    protocol: str = 'cpu-tiny'
    export_bn_batches: int = 0
    variant: str = 'cpu-tiny'
    ema_momentum: Optional[float] = None
    finetune_fractions: Optional[Tuple[float, ...]] = None

    IDENTITY = ('scenes', 'samples_per_scene', 'sweeps', 'objects_per_class', 'val_scenes', 'data_seed',
                'teacher_scenes', 'teacher_samples_per_scene', 'teacher_iters', 'pretrain_epochs', 'ladder',
                'probe_iters', 'probe_ladder', 'probe_lr', 'probe_version', 'heatmap_prior_prob', 'pretext_samples',
                'ceiling_max_iters', 'ceiling_interval', 'protocol', 'export_bn_batches', 'variant', 'ema_momentum')
    # what a setting saved before a field existed ran with (its records were made so). The ceiling fields are not
    # here: a run made before them has no ceiling record, so today's defaults (read for the missing keys) describe
    # the ceiling job it still has to run, and such a directory accepts them.
    LEGACY = dict(objects_per_class=(1, 2), val_scenes=None, probe_version=1, heatmap_prior_prob=None,
                  protocol='cpu-tiny', export_bn_batches=0, variant='cpu-tiny', ema_momentum=None,
                  probe_ladder=())

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f'setting protocol must be one of {list(PROTOCOLS)}, got {self.protocol!r}')
        if int(self.export_bn_batches) < 0:
            raise ValueError(f'setting export_bn_batches must be >= 0 (0: every training sample), got '
                             f'{self.export_bn_batches}')
        if self.paper and self.probe_arms:
            raise ValueError(f'protocol paper has no frozen probe (it caches every sample\'s fused BEV map in '
                             f'memory, a CPU-tiny device), got probe arms {list(self.probe_arms)}: leave out '
                             '--probe-arms')
        for name in ('scenes', 'samples_per_scene', 'pretrain_epochs', 'probe_iters', 'teacher_iters',
                     'ceiling_max_iters', 'ceiling_interval'):
            if int(getattr(self, name)) < 1:
                raise ValueError(f'setting {name} must be >= 1, got {getattr(self, name)}')
        if self.scenes < 2:
            raise ValueError(f'setting scenes must be >= 2 (a train and a val scene), got {self.scenes}')
        if self.samples_per_scene < 2:
            raise ValueError(f'setting samples_per_scene must be >= 2 (the generator needs two keyframes for '
                             f'velocities), got {self.samples_per_scene}')
        opc = tuple(int(v) for v in self.objects_per_class)
        if len(opc) != 2 or not 0 <= opc[0] <= opc[1] or opc[1] < 1:
            raise ValueError(f'setting objects_per_class must be (min, max) with 0 <= min <= max, max >= 1, got '
                             f'{self.objects_per_class}')
        if self.val_scenes is not None and not 1 <= int(self.val_scenes) < self.scenes:
            raise ValueError(f'setting val_scenes must be None or in [1, scenes - 1 = {self.scenes - 1}], got '
                             f'{self.val_scenes}')
        if self.probe_version not in (1, 2):
            raise ValueError(f'setting probe_version must be 1 (raw maps) or 2 (standardised), got '
                             f'{self.probe_version}')
        if self.heatmap_prior_prob is not None and not 0.0 < float(self.heatmap_prior_prob) < 1.0:
            raise ValueError(f'setting heatmap_prior_prob must be None or in (0, 1), got {self.heatmap_prior_prob}')
        if self.probe_ladder and (list(self.probe_ladder) != sorted(set(self.probe_ladder)) or self.probe_ladder[0] < 1
                                  or 'scratch' not in self.probe_arms):
            raise ValueError(f'setting probe_ladder must be increasing positive iteration counts with scratch among '
                             f'the probe arms (its curve fixes the probe length), got {self.probe_ladder} for probe '
                             f'arms {list(self.probe_arms)}')
        if not self.ladder or list(self.ladder) != sorted(set(self.ladder)) or self.ladder[0] < 1:
            raise ValueError(f'setting ladder must be increasing positive {self.unit} counts, got {self.ladder}')
        if int(self.ceiling_max_iters) % int(self.ceiling_interval):
            raise ValueError(f'setting ceiling_max_iters ({self.ceiling_max_iters}) must be a multiple of '
                             f'ceiling_interval ({self.ceiling_interval})')
        for f in self.fractions:
            if not 0.0 < float(f) <= 1.0:
                raise ValueError(f'setting fractions must lie in (0, 1], got {f}')
        stray = [f for f in (self.finetune_fractions or ()) if float(f) not in {float(g) for g in self.fractions}]
        if stray or (self.finetune_fractions is not None and not self.finetune_fractions):
            raise ValueError(f'setting finetune_fractions must be None (every fraction) or a non-empty subset of '
                             f'fractions {list(self.fractions)}, got {self.finetune_fractions}')
        get_variant(self.variant).validate()
        if self.paper and self.variant != 'cpu-tiny':
            raise ValueError(f'setting variant {self.variant!r} rewrites the CPU-tiny configs; protocol paper runs '
                             "the full-size ones (leave variant 'cpu-tiny')")
        if self.ema_momentum is not None and not 0.0 < float(self.ema_momentum) < 1.0:
            raise ValueError(f'setting ema_momentum must be None or in (0, 1), got {self.ema_momentum}')
        unknown = [a for a in tuple(self.probe_arms) + tuple(self.finetune_arms) if a not in ARMS]
        if unknown:
            raise ValueError(f'unknown arms {unknown}; known: {list(ARMS)}')
        if 'scratch' not in self.finetune_arms:
            raise ValueError('finetune_arms must include scratch (the protocol fixes the iteration count on it)')

    @property
    def paper(self) -> bool:
        """The paper protocol: full-size configs, real nuScenes, ``tools/dist_train.sh``."""
        return self.protocol == 'paper'

    @property
    def unit(self) -> str:
        """What the ladder counts: 'iterations' (cpu-tiny, iteration-based configs) or 'epochs' (paper)."""
        return 'epochs' if self.paper else 'iterations'

    @property
    def train_scenes(self) -> int:
        """Scenes of the train split (the generator's split of ``scenes``)."""
        return self.scenes - self.val_scene_count

    @property
    def val_scene_count(self) -> int:
        """Scenes of the val split (every other scene, the second first, when ``val_scenes`` is None)."""
        return self.scenes // 2 if self.val_scenes is None else int(self.val_scenes)

    @property
    def finetuned_fractions(self) -> Tuple[float, ...]:
        """The fractions at which the fine-tune arms are fully fine-tuned (``finetune_fractions``, default all)."""
        return tuple(self.fractions if self.finetune_fractions is None else self.finetune_fractions)

    @property
    def ladder_fraction(self) -> float:
        """Scratch's iteration ladder runs at the largest fraction that is fully fine-tuned (the length it fixes is
        used there and below)."""
        return max(self.finetuned_fractions)

    def to_json(self) -> Dict:
        return {f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    @classmethod
    def from_json(cls, data: Dict) -> 'Setting':
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f'unknown setting keys {unknown}')
        kw = dict(cls.LEGACY)
        kw.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})
        return cls(**kw)

    def identity_diff(self, other: 'Setting') -> List[str]:
        """The identity fields on which the two settings differ, as ``name: old -> new`` strings."""
        a, b = self.to_json(), other.to_json()
        return [f'{k}: {a[k]} -> {b[k]}' for k in self.IDENTITY if a[k] != b[k]]

    def save(self, path: str) -> None:
        from clap_plugin.utils.atomic_write import write_json_atomic
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str) -> 'Setting':
        with open(path) as f:
            return cls.from_json(json.load(f))


PRESETS: Dict[str, Setting] = dict(
    # data that can teach a detector on a cheap model: 60 scenes of 2 keyframes (each scene with objects of its
    # own, 1-3 per class), 40 train scenes (80 samples, the pre-training pool of every arm) and 20 val scenes (40
    # samples), keyframe points only; the cpu-fast variant (64 x 192 crops of 400 x 225 images, 0.3 m voxels,
    # 2.4 m BEV cells over +-33.6 m) for pre-training and fine-tuning alike; EMA weights validated. Scratch's
    # ladder validates every 200 iterations and stops at the first rung that gains under 5 % (cap 1400). Probe at
    # 25 % and 50 % of the labels, full fine-tuning of the four key arms at 25 %, three seeds each
    # (docs/benchmarks.md: what it measured and what it costs)
    default=Setting(scenes=60, samples_per_scene=2, sweeps=0, objects_per_class=(1, 3), val_scenes=20,
                    variant='cpu-fast', ema_momentum=0.01, ladder=(200, 400, 600, 800, 1000, 1200, 1400),
                    probe_iters=800, probe_ladder=(200, 400, 800),
                    ceiling_max_iters=1200, ceiling_interval=100, fractions=(0.25, 0.5), finetune_fractions=(0.25, )),
    # the default of runs made before the cpu-fast variant (tools/benchmarks/label_efficiency_bench.md)
    bench=Setting(scenes=60, samples_per_scene=2, sweeps=0, objects_per_class=(1, 3), val_scenes=20,
                  variant='cpu-bench', ema_momentum=0.01, ladder=(150, 300, 600), probe_iters=400,
                  probe_ladder=(100, 200, 400),
                  ceiling_max_iters=1200, ceiling_interval=100, fractions=(0.25, 0.5), finetune_fractions=(0.25, )),
    # the default of runs made before the cpu-bench variant: 10 scenes of 6 keyframes, the CPU-tiny configs
    tiny=Setting(),
    # data that can teach a detector: many scenes of 2 keyframes (each scene with objects of its own), 40 train
    # scenes (80 samples) and 20 val scenes (40 samples), 1-3 objects per class and scene, 1 sweep; otherwise the
    # default setting's schedules (to be fixed by the ceiling run)
    diverse=Setting(scenes=60, samples_per_scene=2, sweeps=1, objects_per_class=(1, 3), val_scenes=20,
                    ceiling_max_iters=1200, ceiling_interval=100),
    # a few minutes: the plumbing of every job kind, for the test suite
    smoke=Setting(scenes=2, samples_per_scene=3, teacher_scenes=2, teacher_samples_per_scene=2, teacher_iters=4,
                  pretrain_epochs=1, ladder=(2, 4), probe_iters=4, probe_ladder=(2, 4), image_cache_mb=256,
                  pretext_samples=1,
                  ceiling_max_iters=4, ceiling_interval=2, variant='cpu-bench', ema_momentum=0.01,
                  fractions=(0.5, 1.0), seeds=(0, ), probe_arms=('scratch', 'clap'),
                  finetune_arms=('scratch', 'clap')),
    # for a GPU machine or a long CPU run: more scenes, epochs, iterations, every arm fine-tuned, five seeds
    large=Setting(scenes=40, samples_per_scene=8, teacher_iters=1500, pretrain_epochs=12,
                  ladder=(100, 200, 400, 800, 1600), probe_iters=600, ceiling_max_iters=3200, ceiling_interval=200,
                  fractions=(0.05, 0.1, 0.25),
                  seeds=(0, 1, 2, 3, 4), finetune_arms=tuple(ARMS)),
    # the paper's protocol on a GPU machine (--data-root: converted nuScenes v1.0-trainval; --gpus per job): the
    # full-size configs, 12 pre-training epochs per arm, scratch fine-tuned at 5 % of the labels along BEVFusion's
    # 20-epoch schedule (val every 5 epochs) to fix the epochs, then every arm fine-tuned for as long, 3 seeds; no
    # frozen probe, pretext figures or ceiling (CPU-tiny instruments); BN statistics of each export re-estimated on
    # 64 training samples (the export runs on CPU)
    paper=Setting(protocol='paper', pretrain_epochs=12, ladder=(5, 10, 15, 20), fractions=(0.05, ),
                  seeds=(0, 1, 2), probe_arms=(), finetune_arms=tuple(ARMS), export_bn_batches=64),
)

"""The sizes of one label-efficiency run, with the presets ``default``, ``smoke`` and ``large``."""
import dataclasses
import json
from dataclasses import dataclass
from typing import Dict, List, Tuple

from .arms import ARMS


@dataclass
class Setting:
    """What one benchmark run does. Fields under ``IDENTITY`` fix the experiment: a run directory refuses a
    setting that changes them. Seeds, fractions and arms may grow between runs (a later session adds seeds).

    Data: ``scenes`` synthetic v1.0-trainval scenes of ``samples_per_scene`` keyframes; the generator alternates
    official train and val scenes, so half are pre-training / fine-tuning scenes and half are the val split.
    Every pre-training uses all train samples without labels; fine-tuning keeps ``fraction`` of them with labels.
    """
    scenes: int = 10
    samples_per_scene: int = 6
    sweeps: int = 2
    data_seed: int = 0
    teacher_scenes: int = 10
    teacher_samples_per_scene: int = 4
    teacher_iters: int = 600
    pretrain_epochs: int = 4
    ladder: Tuple[int, ...] = (20, 40, 80)
    probe_iters: int = 100
    probe_lr: float = 1e-3
    image_cache_mb: int = 2048
    pretext_samples: int = 6
    fractions: Tuple[float, ...] = (0.1, 0.25)
    seeds: Tuple[int, ...] = (0, 1, 2)
    probe_arms: Tuple[str, ...] = tuple(ARMS)
    finetune_arms: Tuple[str, ...] = ('scratch', 'unipad', 'joint_curvature', 'clap')

    IDENTITY = ('scenes', 'samples_per_scene', 'sweeps', 'data_seed', 'teacher_scenes', 'teacher_samples_per_scene',
                'teacher_iters', 'pretrain_epochs', 'ladder', 'probe_iters', 'probe_lr', 'pretext_samples')

    def validate(self) -> None:
        for name in ('scenes', 'samples_per_scene', 'pretrain_epochs', 'probe_iters', 'teacher_iters'):
            if int(getattr(self, name)) < 1:
                raise ValueError(f'setting {name} must be >= 1, got {getattr(self, name)}')
        if self.scenes < 2:
            raise ValueError(f'setting scenes must be >= 2 (a train and a val scene), got {self.scenes}')
        if not self.ladder or list(self.ladder) != sorted(set(self.ladder)) or self.ladder[0] < 1:
            raise ValueError(f'setting ladder must be increasing positive iteration counts, got {self.ladder}')
        for f in self.fractions:
            if not 0.0 < float(f) <= 1.0:
                raise ValueError(f'setting fractions must lie in (0, 1], got {f}')
        unknown = [a for a in tuple(self.probe_arms) + tuple(self.finetune_arms) if a not in ARMS]
        if unknown:
            raise ValueError(f'unknown arms {unknown}; known: {list(ARMS)}')
        if 'scratch' not in self.finetune_arms:
            raise ValueError('finetune_arms must include scratch (the protocol fixes the iteration count on it)')

    @property
    def ladder_fraction(self) -> float:
        """Scratch's iteration ladder runs at the largest label fraction."""
        return max(self.fractions)

    def to_json(self) -> Dict:
        return {f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    @classmethod
    def from_json(cls, data: Dict) -> 'Setting':
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f'unknown setting keys {unknown}')
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
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
    # about two hours on a 2-core CPU machine with two workers (see tools/benchmarks/label_efficiency.md)
    default=Setting(),
    # a few minutes: the plumbing of every job kind, for the test suite
    smoke=Setting(scenes=2, samples_per_scene=3, teacher_scenes=2, teacher_samples_per_scene=2, teacher_iters=4,
                  pretrain_epochs=1, ladder=(2, 4), probe_iters=4, image_cache_mb=256, pretext_samples=1,
                  fractions=(0.5, 1.0), seeds=(0, ), probe_arms=('scratch', 'clap'),
                  finetune_arms=('scratch', 'clap')),
    # for a GPU machine or a long CPU run: more scenes, epochs, iterations, every arm fine-tuned, five seeds
    large=Setting(scenes=40, samples_per_scene=8, teacher_iters=1500, pretrain_epochs=12,
                  ladder=(100, 200, 400, 800, 1600), probe_iters=600, fractions=(0.05, 0.1, 0.25),
                  seeds=(0, 1, 2, 3, 4), finetune_arms=tuple(ARMS)),
)

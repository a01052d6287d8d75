"""The jobs of a label-efficiency run, their dependencies and their file layout under the run directory.

Layout of ``OUT``: ``setting.json``; ``data/nuscenes`` (the synthetic set) and ``teacher_data/nuscenes``;
``work/<job>/`` (work directories); ``encoders/<arm>.pth`` (exported encoders); ``logs/<job>.log``;
``records/<job>.json`` (one record per finished job, written atomically: a job with a record is done).
"""
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .arms import ARMS
from .setting import Setting


@dataclass(frozen=True)
class Job:
    """One unit of work. ``kind`` selects the runner (:mod:`.jobs`); ``deps`` are job ids that must be done."""
    id: str
    kind: str
    deps: Tuple[str, ...] = ()
    arm: Optional[str] = None
    stage: Optional[str] = None
    fraction: Optional[float] = None
    seed: Optional[int] = None


@dataclass(frozen=True)
class RunPaths:
    """Where a run keeps its files."""
    out: str

    @property
    def data_root(self) -> str:
        return osp.join(self.out, 'data', 'nuscenes') + '/'

    @property
    def teacher_root(self) -> str:
        return osp.join(self.out, 'teacher_data', 'nuscenes') + '/'

    @property
    def teacher_ckpt(self) -> str:
        return osp.join(self.out, 'encoders', 'teacher_2d.pth')

    def work(self, job_id: str) -> str:
        return osp.join(self.out, 'work', job_id)

    def log(self, job_id: str) -> str:
        return osp.join(self.out, 'logs', f'{job_id}.log')

    def record(self, job_id: str) -> str:
        return osp.join(self.out, 'records', f'{job_id}.json')

    def encoders(self, name: str) -> str:
        return osp.join(self.out, 'encoders', f'{name}.pth')

    @property
    def setting(self) -> str:
        return osp.join(self.out, 'setting.json')


CEILING = 'ceiling'


def fraction_tag(fraction: float) -> str:
    return f'f{float(fraction):g}'


def finetune_id(arm: str, fraction: float, seed: int) -> str:
    return f'finetune-{arm}-{fraction_tag(fraction)}-s{seed}'


def probe_id(arm: str) -> str:
    return f'probe-{arm}'


def encoder_job(arm: str) -> Optional[str]:
    """The job whose record names the arm's encoder checkpoint (None for scratch)."""
    a = ARMS[arm]
    if not a.pretrained:
        return None
    return f'merge-{arm}' if len(a.stages) > 1 else f'pretrain-{a.stages[0].name}'


def build_plan(setting: Setting) -> List[Job]:
    """Every job of the run, dependencies before dependants. The paper protocol has no ceiling and no pretext jobs
    (nor probes: its setting has no probe arms); its teacher job takes a given 2D checkpoint instead of training one."""
    setting.validate()
    arms = list(dict.fromkeys(tuple(setting.probe_arms) + tuple(setting.finetune_arms)))
    jobs: List[Job] = [Job('data', 'data')]
    if not setting.paper:  # the ceiling first after the data: scratch with all labels, the detector's reach here
        jobs.append(Job(CEILING, 'ceiling', ('data', ), arm='scratch', fraction=1.0, seed=0))
    needs_teacher = any(s.needs_teacher for a in arms for s in ARMS[a].stages)
    if needs_teacher:
        jobs.append(Job('teacher', 'teacher'))
    for arm in arms:
        a = ARMS[arm]
        for s in a.stages:
            deps = ('data', 'teacher') if s.needs_teacher else ('data', )
            jobs.append(Job(f'pretrain-{s.name}', 'pretrain', deps, arm=arm, stage=s.name))
            if s.renders and not setting.paper:
                jobs.append(Job(f'pretext-{s.name}', 'pretext', (f'pretrain-{s.name}', ), arm=arm, stage=s.name))
        if len(a.stages) > 1:
            jobs.append(Job(f'merge-{arm}', 'merge', tuple(f'pretrain-{s.name}' for s in a.stages), arm=arm))
    jobs.append(Job('ladder', 'ladder', ('data', ), arm='scratch', fraction=setting.ladder_fraction, seed=0))
    for arm in sorted(setting.probe_arms, key=lambda a: a != 'scratch'):  # scratch's probe first
        enc = encoder_job(arm)
        length = (probe_id('scratch'), ) if setting.probe_ladder and arm != 'scratch' else ()
        jobs.append(Job(probe_id(arm), 'probe', ('data', ) + ((enc, ) if enc else ()) + length, arm=arm))
    for arm in setting.finetune_arms:
        enc = encoder_job(arm)
        for fraction in setting.finetuned_fractions:
            for seed in setting.seeds:
                jobs.append(Job(finetune_id(arm, fraction, seed), 'finetune', ('ladder', ) + ((enc, ) if enc else ()),
                                arm=arm, fraction=float(fraction), seed=int(seed)))
    ids = [j.id for j in jobs]
    assert len(ids) == len(set(ids)), 'duplicate job ids'
    return jobs


def by_id(jobs: List[Job]) -> Dict[str, Job]:
    return {j.id: j for j in jobs}

"""The arms of the label-efficiency benchmark: how each one's encoders are pre-trained (same model and data).

Every stage names two configs: the CPU-tiny one (protocol ``cpu-tiny``, the presets run on synthetic data) and
the full-size one of the paper (protocol ``paper``, real nuScenes through ``tools/dist_train.sh``).
"""
from dataclasses import dataclass, field
from typing import Dict, Tuple

PROTOCOLS = ('cpu-tiny', 'paper')


@dataclass(frozen=True)
class PretrainStage:
    """One pre-training run of an arm.

    Args:
        name: stage name, unique over all arms (job ids and work directories use it).
        config: pre-training config, relative to the repository root.
        needs_teacher: the config distils the 2D teacher (``model.teacher_checkpoint`` must be set).
        renders: the model renders depth / RGB (it gets pretext figures before and after pre-training).
        paper_config: the full-size pre-training config of the same stage (protocol ``paper``).
    """
    name: str
    config: str
    needs_teacher: bool = False
    renders: bool = False
    paper_config: str = ''

    def config_of(self, protocol: str) -> str:
        """The stage's config under ``protocol`` ('cpu-tiny' or 'paper')."""
        if protocol not in PROTOCOLS:
            raise ValueError(f'unknown protocol {protocol!r}; known: {list(PROTOCOLS)}')
        if protocol == 'paper':
            if not self.paper_config:
                raise ValueError(f'stage {self.name} has no full-size config (paper_config)')
            return self.paper_config
        return self.config


@dataclass(frozen=True)
class Arm:
    """A pre-training method. ``stages`` is empty for scratch; two stages are merged (UniPAD-style halves)."""
    name: str
    label: str
    stages: Tuple[PretrainStage, ...] = field(default_factory=tuple)

    @property
    def pretrained(self) -> bool:
        return len(self.stages) > 0


_TINY = 'configs/clap_pretrain_nus_cpu-tiny.py'
_ABL = 'configs/ablations/'
ARMS: Dict[str, Arm] = {a.name: a for a in (
    Arm('scratch', 'scratch'),
    Arm('unipad', 'UniPAD-style (separate, merged)', (
        PretrainStage('unipad_lidar', _ABL + 'unipad_lidar_pretrain_nus_cpu-tiny.py', renders=True,
                      paper_config=_ABL + 'unipad_lidar_pretrain_nus.py'),
        PretrainStage('unipad_camera', _ABL + 'unipad_camera_pretrain_nus_cpu-tiny.py', renders=True,
                      paper_config=_ABL + 'unipad_camera_pretrain_nus.py'))),
    Arm('joint_uniform', 'joint + uniform sampling', (
        PretrainStage('joint_uniform', _ABL + 'clap_ablation_joint-uniform_nus_cpu-tiny.py', renders=True,
                      paper_config=_ABL + 'clap_ablation_joint-uniform_nus.py'), )),
    Arm('joint_curvature', 'joint + curvature sampling', (
        PretrainStage('joint_curvature', _ABL + 'clap_ablation_joint-curvature_nus_cpu-tiny.py', renders=True,
                      paper_config=_ABL + 'clap_ablation_joint-curvature_nus.py'), )),
    Arm('clap', 'CLAP', (PretrainStage('clap', _TINY, renders=True, paper_config='configs/clap_pretrain_nus.py'), )),
    Arm('ppkt', 'PPKT', (PretrainStage('ppkt', 'projects/PPKT/configs/ppkt_pretrain_nus_cpu-tiny.py',
                                       needs_teacher=True,
                                       paper_config='projects/PPKT/configs/ppkt_pretrain_nus.py'), )),
    Arm('simipu', 'SimIPU', (PretrainStage('simipu', 'projects/SimIPU/configs/simipu_pretrain_nus_cpu-tiny.py',
                                           paper_config='projects/SimIPU/configs/simipu_pretrain_nus.py'), )),
    Arm('cmcr', 'CMCR', (PretrainStage('cmcr', 'projects/CMCR/configs/cmcr_pretrain_nus_cpu-tiny.py',
                                       needs_teacher=True,
                                       paper_config='projects/CMCR/configs/cmcr_pretrain_nus.py'), )),
)}

# the fine-tune config every arm is probed and fine-tuned with (protocol cpu-tiny)
FINETUNE_CONFIG = 'configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py'
# the full-size fine-tune config of the paper protocol (BEVFusion lidar-cam, its cyclic 20-epoch schedule)
PAPER_FINETUNE_CONFIG = 'configs/bevfusion_lidar-cam_finetune_nus.py'


def finetune_config(protocol: str) -> str:
    """The fine-tune config of every arm under ``protocol``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f'unknown protocol {protocol!r}; known: {list(PROTOCOLS)}')
    return PAPER_FINETUNE_CONFIG if protocol == 'paper' else FINETUNE_CONFIG

"""The arms of the label-efficiency benchmark: how each one's encoders are pre-trained (same model and data)."""
from dataclasses import dataclass, field
from typing import Dict, Tuple


@dataclass(frozen=True)
class PretrainStage:
    """One pre-training run of an arm.

    Args:
        name: stage name, unique over all arms (job ids and work directories use it).
        config: pre-training config, relative to the repository root.
        needs_teacher: the config distils the 2D teacher (``model.teacher_checkpoint`` must be set).
        renders: the model renders depth / RGB (it gets pretext figures before and after pre-training).
    """
    name: str
    config: str
    needs_teacher: bool = False
    renders: bool = False


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
ARMS: Dict[str, Arm] = {a.name: a for a in (
    Arm('scratch', 'scratch'),
    Arm('unipad', 'UniPAD-style (separate, merged)', (
        PretrainStage('unipad_lidar', 'configs/ablations/unipad_lidar_pretrain_nus_cpu-tiny.py', renders=True),
        PretrainStage('unipad_camera', 'configs/ablations/unipad_camera_pretrain_nus_cpu-tiny.py', renders=True))),
    Arm('joint_uniform', 'joint + uniform sampling', (
        PretrainStage('joint_uniform', 'configs/ablations/clap_ablation_joint-uniform_nus_cpu-tiny.py',
                      renders=True), )),
    Arm('joint_curvature', 'joint + curvature sampling', (
        PretrainStage('joint_curvature', 'configs/ablations/clap_ablation_joint-curvature_nus_cpu-tiny.py',
                      renders=True), )),
    Arm('clap', 'CLAP', (PretrainStage('clap', _TINY, renders=True), )),
    Arm('ppkt', 'PPKT', (PretrainStage('ppkt', 'projects/PPKT/configs/ppkt_pretrain_nus_cpu-tiny.py',
                                       needs_teacher=True), )),
    Arm('simipu', 'SimIPU', (PretrainStage('simipu', 'projects/SimIPU/configs/simipu_pretrain_nus_cpu-tiny.py'), )),
    Arm('cmcr', 'CMCR', (PretrainStage('cmcr', 'projects/CMCR/configs/cmcr_pretrain_nus_cpu-tiny.py',
                                       needs_teacher=True), )),
)}

# the fine-tune config every arm is probed and fine-tuned with
FINETUNE_CONFIG = 'configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py'

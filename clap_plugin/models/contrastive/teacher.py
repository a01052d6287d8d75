"""The frozen 2D teacher of the point-to-pixel distillation baselines.

PPKT (Liu et al., 2021) and CMCR (Zhang and Hou, 2024) distil a 2D network *learnt on 2D data* into the LiDAR
encoder; a randomly initialised network is not that method. So the teacher must come from a checkpoint:

* ``teacher_checkpoint=PATH``: a local file holding the weights of the teacher architecture (by default the
  config's ``img_backbone``), bare or prefixed ``img_backbone.`` / ``backbone.`` (the image-backbone loader of
  :class:`CLAPSwinTransformer`). ``tools/train_2d_teacher.py`` writes one; ImageNet or nuImages Swin weights
  on disk load the same way.
* ``random_teacher_ablation=True``: the explicitly named ablation with the image backbone *as initialised*
  (random unless ``img_backbone.init_cfg`` loads a file); logged as such at build and at every init.

Anything else is refused with an error naming the config key.
"""
import copy
import os.path as osp
from typing import Optional, Tuple

from mmengine.logging import print_log
from torch import nn


class TeacherError(ValueError):
    """A distillation baseline was configured without a usable 2D teacher."""


def _checkpoint_of(cfg: dict) -> Optional[str]:
    init = cfg.get('init_cfg') if isinstance(cfg, dict) else None
    return init.get('checkpoint') if isinstance(init, dict) else None


def build_frozen_teacher(method: str, img_backbone: dict, teacher: Optional[dict], teacher_checkpoint: Optional[str],
                         random_teacher_ablation: bool) -> Tuple[nn.Module, str]:
    """Build the frozen teacher of ``method``; returns (module, mode) with mode ``'checkpoint'`` (weights from
    ``teacher_checkpoint`` or the ``teacher`` config's own ``init_cfg``, loaded by ``init_weights``) or
    ``'random_ablation'`` (the caller copies its image backbone as initialised into it)."""
    from mmdet3d.registry import MODELS
    cfg = copy.deepcopy(teacher if teacher is not None else img_backbone)
    if teacher_checkpoint is not None:
        path = str(teacher_checkpoint)
        if '://' in path:
            raise TeacherError(f'{method}: model.teacher_checkpoint={path!r} is a URL; nothing is downloaded, give a '
                               'local file')
        if not osp.isfile(path):
            raise TeacherError(f'{method}: model.teacher_checkpoint={path!r} does not exist (train one with '
                               'tools/train_2d_teacher.py, or point it at ImageNet/nuImages weights on disk)')
        if random_teacher_ablation:
            raise TeacherError(f'{method}: model.teacher_checkpoint and model.random_teacher_ablation=True '
                               'contradict each other; set one')
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=path)
        mode = 'checkpoint'
    elif teacher is not None and _checkpoint_of(teacher):
        mode = 'checkpoint'  # a teacher config carrying its own Pretrained file
    elif random_teacher_ablation:
        print_log(f'{method}: ABLATION random_teacher_ablation=True: the frozen 2D teacher is the image backbone '
                  'as initialised, not a network learnt on 2D data; results are not the published method',
                  logger='current', level=30)
        mode = 'random_ablation'
    else:
        raise TeacherError(
            f'{method} distils a pre-trained 2D network and no teacher was given: set '
            'model.teacher_checkpoint=PATH (a checkpoint of tools/train_2d_teacher.py, or ImageNet/nuImages '
            'weights of the image backbone on disk), or model.teacher=dict(..., init_cfg=dict(type="Pretrained", '
            'checkpoint=PATH)); model.random_teacher_ablation=True runs the random-teacher ablation')
    module = MODELS.build(cfg)
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()
    return module, mode


def teacher_summary(method: str, mode: str, teacher_checkpoint: Optional[str]) -> str:
    """One log line saying where the teacher's weights came from."""
    if mode == 'random_ablation':
        return f'{method}: teacher = ABLATION (random_teacher_ablation): image backbone as initialised, frozen'
    return f'{method}: teacher = frozen 2D network loaded from {teacher_checkpoint or "model.teacher.init_cfg"}'

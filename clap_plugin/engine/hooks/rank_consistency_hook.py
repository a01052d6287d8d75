"""Check that all DDP ranks hold the same weights (prototypes and encoders) and record the result."""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import torch
from mmdet3d.registry import HOOKS
from mmengine.dist import all_gather, get_rank, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

DEFAULT_GROUPS = ('img_backbone', 'img_neck', 'view_transform', 'pts_voxel_encoder', 'pts_middle_encoder',
                  'fusion_layer', 'pts_backbone', 'pts_neck', 'prototype_loss', 'rendering_head')


@HOOKS.register_module()
class RankConsistencyHook(Hook):
    """After training (and every ``interval`` iterations if set), gather every rank's parameters per submodule
    group and report the largest difference from rank 0. Writes ``rank_consistency.json`` to the work dir and
    raises when a difference exceeds ``tolerance`` and ``strict`` is set.

    Args:
        groups: top-level submodule names compared (missing ones are skipped).
        interval: also check every ``interval`` iterations (None: only at the end).
        tolerance: largest allowed absolute difference.
        strict: raise on a mismatch instead of only logging it.
    """
    priority = 'VERY_LOW'

    def __init__(self, groups: Sequence[str] = DEFAULT_GROUPS, interval: Optional[int] = None,
                 tolerance: float = 0.0, strict: bool = True) -> None:
        self.groups, self.interval, self.tolerance, self.strict = tuple(groups), interval, float(tolerance), strict

    def check(self, model: torch.nn.Module) -> Dict[str, float]:
        """Max |param - param on rank 0| per group, over all ranks (identical on every rank)."""
        result = {}
        for name in self.groups:
            module = getattr(model, name, None)
            if module is None:
                continue
            flat = torch.cat([p.detach().reshape(-1).double().cpu() for p in module.parameters()] or
                             [torch.zeros(0, dtype=torch.float64)])
            gathered = all_gather(flat) if get_world_size() > 1 else [flat]
            result[name] = max(float((g - gathered[0]).abs().max()) if g.numel() else 0.0 for g in gathered)
        return result

    def _run(self, runner, tag: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        diffs = self.check(model)
        worst = max(diffs.values(), default=0.0)
        runner.logger.info(f'rank consistency ({tag}, {get_world_size()} ranks): max diff {worst:.3g} {diffs}')
        if is_main_process():
            path = osp.join(runner.work_dir, 'rank_consistency.json')
            tmp = f'{path}.tmp{get_rank()}'
            with open(tmp, 'w') as f:
                json.dump(dict(tag=tag, world_size=get_world_size(), max_abs_diff=diffs), f, indent=1)
            os.replace(tmp, path)
        if self.strict and worst > self.tolerance:
            raise RuntimeError(f'ranks disagree by {worst} (> {self.tolerance}) after {tag}: {diffs}')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.interval and (runner.iter + 1) % self.interval == 0:
            self._run(runner, f'iter {runner.iter + 1}')

    def after_train(self, runner) -> None:
        self._run(runner, 'training')

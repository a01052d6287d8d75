"""Stop an iteration-based training run once its validation curve has saturated.

The rule (arXiv 2412.03059's label-efficiency protocol as this package runs it, ``docs/benchmarks.md``): a curve
has saturated when a validation improves the monitored metric on the one before by less than ``gain`` relative,
``m[i + 1] - m[i] < gain * m[i]`` (a drop counts). A validation at 0 never saturates (a relative gain from 0 is
undefined, and a detector on the floor has not converged). Only validations at ``rungs`` (iterations) count.
"""
from typing import Dict, List, Optional, Sequence

from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log

NUSCENES_MAP = 'NuScenes metric/pred_instances_3d_NuScenes/mAP'


def saturates(before: float, after: float, gain: float = 0.05) -> bool:
    """True when going from ``before`` to ``after`` improves by less than ``gain`` relative (never from 0)."""
    return before > 0 and after - before < gain * before


@HOOKS.register_module()
class SaturationStopHook(Hook):
    """Ends training after the first validation (at one of ``rungs``) that saturates the curve.

    Args:
        rungs: the iterations whose validations count (increasing); others are ignored.
        gain: the relative improvement below which the curve has saturated (0.05).
        metric: the key of the validation metric to monitor (nuScenes mAP).
    """
    priority = 'LOW'

    def __init__(self, rungs: Sequence[int], gain: float = 0.05, metric: str = NUSCENES_MAP) -> None:
        rungs = [int(r) for r in rungs]
        if not rungs or rungs != sorted(set(rungs)) or rungs[0] < 1:
            raise ValueError(f'SaturationStopHook rungs must be increasing positive iterations, got {rungs}')
        if not 0.0 < float(gain) < 1.0:
            raise ValueError(f'SaturationStopHook gain must lie in (0, 1), got {gain}')
        self.rungs = rungs
        self.gain = float(gain)
        self.metric = metric
        self.seen: List[float] = []

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if runner.iter not in self.rungs or not metrics:
            return
        if self.metric not in metrics:
            raise KeyError(f'SaturationStopHook: the validation has no metric {self.metric!r}; it has '
                           f'{sorted(metrics)}')
        value = float(metrics[self.metric])
        if self.seen and saturates(self.seen[-1], value, self.gain):
            print_log(f'SaturationStopHook: {self.metric} {self.seen[-1]:.4f} -> {value:.4f} at iteration '
                      f'{runner.iter} (under {self.gain:.0%} relative gain): saturated, training stops',
                      logger='current')
            runner.train_loop.stop_training = True
        self.seen.append(value)

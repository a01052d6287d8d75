"""Validation curves of the benchmark: when one has saturated (the 5 % rule), and the ceiling run's summary.

A curve is a list of ``{'step', 'mAP', 'NDS'}`` (one per validation, :func:`.jobs.val_metrics`).

The rule (issue 18): a curve has saturated at the first validation after which the next validation improves
val mAP by less than 5 % relative, ``mAP[i + 1] - mAP[i] < 0.05 * mAP[i]`` (a drop counts). A validation at
mAP 0 never saturates: a relative gain from 0 is undefined, and a detector that has not left the floor has not
converged either. A curve that never saturates was stopped by its cap, which the records and the report name.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from clap_plugin.engine.hooks.saturation_stop_hook import saturates as _saturates

SATURATION_GAIN = 0.05  # relative val mAP gain below which the next validation counts as no progress


def relative_gain(before: float, after: float) -> Optional[float]:
    """``(after - before) / before``; None when ``before`` is 0 (undefined)."""
    return (after - before) / before if before > 0 else None


def saturates(before: float, after: float, gain: float = SATURATION_GAIN) -> bool:
    """True when going from mAP ``before`` to ``after`` improves it by less than ``gain`` relative
    (never from ``before`` = 0); the rule the ladder's :class:`~clap_plugin.engine.hooks.SaturationStopHook`
    stops on."""
    return _saturates(before, after, gain)


def saturated_at(curve: Sequence[Dict], gain: float = SATURATION_GAIN) -> Optional[int]:
    """The step of the first validation after which the next one improves val mAP by less than ``gain``
    relative; None when no validation does (the curve was still rising at its cap)."""
    points = sorted(curve, key=lambda c: c['step'])
    for a, b in zip(points, points[1:]):
        if saturates(float(a['mAP']), float(b['mAP']), gain):
            return int(a['step'])
    return None


@dataclass(frozen=True)
class LadderConvergence:
    """Whether scratch's ladder has converged: its last rung improved val mAP on the rung before by less than
    5 % relative (``saturated``). ``last_gain`` is that relative gain (None from mAP 0 or a single rung);
    ``stopped_by`` names the cap when the ladder has not saturated."""
    saturated: bool
    last_gain: Optional[float]
    stopped_by: Optional[str]


def ladder_rungs(curve: Sequence[Dict], ladder: Sequence[int], gain: float = SATURATION_GAIN) -> List[Dict]:
    """The curve's validations at the ladder's rungs, in order: every rung, or the rungs up to the first one that
    saturated the curve (a ladder stopped there by :class:`~clap_plugin.engine.hooks.SaturationStopHook`).
    Raises ValueError when rungs are missing otherwise (a run that died, or a curve of another ladder)."""
    by_step = {int(c['step']): c for c in curve}
    rungs = [by_step[s] for s in ladder if s in by_step]
    steps = [int(c['step']) for c in rungs]
    complete = steps == list(ladder)
    stopped = (steps == list(ladder[:len(steps)]) and len(steps) >= 2
               and saturates(float(rungs[-2]['mAP']), float(rungs[-1]['mAP']), gain)
               and not any(saturates(float(a['mAP']), float(b['mAP']), gain) for a, b in zip(rungs[:-2], rungs[1:-1])))
    if not (complete or stopped):
        raise ValueError(f'ladder validations at {sorted(by_step)}, expected {list(ladder)} (or the rungs up to the '
                         'first that saturated)')
    return rungs


def ladder_convergence(curve: Sequence[Dict], ladder: Sequence[int], gain: float = SATURATION_GAIN,
                       unit: str = 'iterations') -> LadderConvergence:
    """The 5 % rule on the ladder's last two validated rungs (other validations of the curve are ignored; a
    ladder stopped at saturation has validated only the rungs up to it); ``unit`` names what the rungs count in
    ``stopped_by`` (epochs under the paper protocol)."""
    rungs = [float(c['mAP']) for c in ladder_rungs(curve, ladder, gain)]
    if len(rungs) < 2:
        return LadderConvergence(False, None, f'ladder cap {ladder[-1]} {unit} (a single rung)')
    ok = saturates(rungs[-2], rungs[-1], gain)
    return LadderConvergence(ok, relative_gain(rungs[-2], rungs[-1]),
                             None if ok else f'ladder cap {ladder[-1]} {unit}')


@dataclass(frozen=True)
class CeilingSummary:
    """The ceiling run's curve and what it says: the best validation (the first of equals), and whether and
    where the curve saturated by the 5 % rule (``stopped_by`` names the cap when it did not)."""
    curve: List[Dict]
    best_map: float
    best_nds: float
    best_iters: int
    saturated: bool
    saturated_at: Optional[int]
    stopped_by: Optional[str]


def ceiling_summary(curve: Sequence[Dict], interval: int, max_iters: int,
                    gain: float = SATURATION_GAIN) -> CeilingSummary:
    """Summarise the ceiling run; its validations must be exactly every ``interval`` up to ``max_iters``."""
    points = sorted(({'step': int(c['step']), 'mAP': float(c['mAP']), 'NDS': float(c['NDS'])} for c in curve),
                    key=lambda c: c['step'])
    expected = list(range(interval, max_iters + 1, interval))
    if [c['step'] for c in points] != expected:
        raise ValueError(f'ceiling validations at {[c["step"] for c in points]}, expected {expected}')
    best = max(points, key=lambda c: (c['mAP'], -c['step']))
    at = saturated_at(points, gain)
    return CeilingSummary(points, best['mAP'], best['NDS'], best['step'], at is not None, at,
                          None if at is not None else f'ceiling_max_iters = {max_iters}')

"""Validation curves of the benchmark: when one has saturated (the 5 % rule), and the ceiling run's summary.

A curve is a list of ``{'step', 'mAP', 'NDS'}`` (one per validation, :func:`.jobs.val_metrics`).

The rule (issue 18): a curve has saturated at the first validation after which the next validation improves
val mAP by less than 5 % relative, ``mAP[i + 1] - mAP[i] < 0.05 * mAP[i]`` (a drop counts). A validation at
mAP 0 never saturates: a relative gain from 0 is undefined, and a detector that has not left the floor has not
converged either. A curve that never saturates was stopped by its cap, which the records and the report name.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

SATURATION_GAIN = 0.05  # relative val mAP gain below which the next validation counts as no progress


def relative_gain(before: float, after: float) -> Optional[float]:
    """``(after - before) / before``; None when ``before`` is 0 (undefined)."""
    return (after - before) / before if before > 0 else None


def saturates(before: float, after: float, gain: float = SATURATION_GAIN) -> bool:
    """True when going from mAP ``before`` to ``after`` improves it by less than ``gain`` relative
    (never from ``before`` = 0)."""
    return before > 0 and after - before < gain * before


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


def ladder_convergence(curve: Sequence[Dict], ladder: Sequence[int], gain: float = SATURATION_GAIN,
                       unit: str = 'iterations') -> LadderConvergence:
    """The 5 % rule on the ladder's last two rungs (other validations of the curve are ignored); ``unit`` names
    what the rungs count in ``stopped_by`` (epochs under the paper protocol)."""
    by_step = {int(c['step']): float(c['mAP']) for c in curve}
    rungs = [by_step[s] for s in ladder if s in by_step]
    if len(rungs) != len(ladder):
        raise ValueError(f'ladder validations at {sorted(by_step)}, expected {list(ladder)}')
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

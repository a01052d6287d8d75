"""Statistics of the benchmark's tables: mean +- sample std over seeds, and linear contrasts of arm means (a
difference, or ``clap - 2 unipad + scratch``) with their standard error, paired by seed when the arms share seeds.

Why pairing: a seed fixes the labelled subset and the training seed of every arm (fine-tune and probe alike), so
arms at the same seed saw the same labels, and much of the seed-to-seed spread is shared. When every arm of a
contrast has the same seeds (at least two), the contrast is formed per seed and its SE is the sample std of
those values / sqrt(n). Otherwise the arms are treated as independent: SE = sqrt(sum w_a^2 s_a^2 / n_a). With a
single seed (or a single value of some arm) there is no SE (None).
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

# (arm, fraction) -> {'mAP': [...], 'NDS': [...], 'seeds': [...]} (``report.collect``)
Cells = Mapping[Tuple[str, float], Dict[str, List]]


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    if n == 0:
        return float('nan'), float('nan')
    m = sum(values) / n
    s = math.sqrt(sum((v - m)**2 for v in values) / (n - 1)) if n > 1 else 0.0
    return m, s


def diff_of_means(a: Sequence[float], b: Sequence[float]) -> Tuple[float, float]:
    """mean(a) - mean(b) and its unpaired standard error sqrt(s_a^2 / n_a + s_b^2 / n_b)."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return ma - mb, math.sqrt(sa**2 / max(len(a), 1) + sb**2 / max(len(b), 1))


@dataclass(frozen=True)
class Estimate:
    """A contrast of arm means: its value, its standard error (None: not estimable, fewer than 2 seeds), the
    number of seeds (paired) or the smallest number of values of an arm (unpaired), and whether it was paired."""
    value: float
    se: Optional[float]
    n: int
    paired: bool


def contrast(cells: Cells, weights: Sequence[Tuple[str, float]], fraction: float,
             key: str = 'mAP') -> Optional[Estimate]:
    """``sum_a w_a * mean(key of arm a)`` at ``fraction`` with its SE (see the module docstring); None when an
    arm has no values there."""
    arms = [(arm, float(w), cells.get((arm, float(fraction)))) for arm, w in weights]
    if any(not c or not c[key] for _, _, c in arms):
        return None
    seed_lists = [list(c['seeds']) for _, _, c in arms]
    first = seed_lists[0]
    if len(first) >= 2 and len(set(first)) == len(first) and all(sorted(s) == sorted(first) for s in seed_lists):
        by_seed = [dict(zip(c['seeds'], c[key])) for _, _, c in arms]
        per_seed = [sum(w * v[s] for (_, w, _), v in zip(arms, by_seed)) for s in sorted(first)]
        m, sd = mean_std(per_seed)
        return Estimate(m, sd / math.sqrt(len(per_seed)), len(per_seed), True)
    value, var, n = 0.0, 0.0, min(len(c[key]) for _, _, c in arms)
    for _, w, c in arms:
        m, sd = mean_std(c[key])
        value += w * m
        var += w * w * sd * sd / len(c[key])
    return Estimate(value, math.sqrt(var) if n >= 2 else None, n, False)


def noise_verdict(a: Sequence[float], b: Sequence[float], what: str = 'mAP') -> str:
    """One plain sentence on ``mean(a) - mean(b)`` of values paired by seed (same order): its value, its SE and
    whether it is within noise (|difference| <= 2 SE). With one seed the noise is not measured, and the sentence
    says that the difference cannot be told from noise."""
    if len(a) != len(b) or not a:
        raise ValueError(f'noise_verdict needs two equally long, non-empty lists of paired values, got {len(a)} and '
                         f'{len(b)}')
    d = [x - y for x, y in zip(a, b)]
    m, sd = mean_std(d)
    if len(d) < 2:
        return (f'{what} difference {m:+.4f} from a single seed: its noise is not measured, so it cannot be told '
                'apart from noise')
    se = sd / math.sqrt(len(d))
    inside = abs(m) <= 2 * se
    return (f'{what} difference {m:+.4f} ± {se:.4f} (SE over {len(d)} paired seeds): '
            + ('within noise (|difference| <= 2 SE)' if inside else 'outside noise (|difference| > 2 SE)'))

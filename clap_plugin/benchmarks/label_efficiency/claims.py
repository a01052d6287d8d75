"""The paper's claims as contrasts of arm means, each with a verdict (issue 18, item 6).

Every claim is a quantity ``q`` (a linear contrast of arm mAP means, :func:`.stats.contrast`) that is positive
when the claim holds:

* ``scratch < joint_uniform``: q = joint_uniform - scratch;
* ``joint_uniform ~= unipad``: d = joint_uniform - unipad (see the equivalence rule below);
* ``unipad < joint_curvature``: q = joint_curvature - unipad;
* ``joint_curvature < clap``: q = clap - joint_curvature;
* ``clap - scratch >= 2 (unipad - scratch)``: q = (clap - scratch) - 2 (unipad - scratch) = clap - 2 unipad + scratch.

Verdict of an inequality: ``supported`` when q > 2 SE, ``contradicted`` when q < -2 SE, else ``unresolved``.
Equivalence (``~=``) within a margin of :data:`EQUIVALENCE_MARGIN` mAP: the same rule on q = margin - |d|, i.e.
``supported`` when the 2-SE interval of d lies inside (-margin, margin), ``contradicted`` when it lies wholly
outside it, else ``unresolved``. A difference smaller than the margin does not contradict "about equal", even
when it is many SE from zero. No SE (a single seed) gives ``unresolved``; an arm without records, ``missing``.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .stats import Cells, contrast

EQUIVALENCE_MARGIN = 0.01  # mAP: |difference| below this counts as "about equal"
SUPPORTED, CONTRADICTED, UNRESOLVED, MISSING = 'supported', 'contradicted', 'unresolved', 'missing'


@dataclass(frozen=True)
class Claim:
    """One claimed relation. ``name`` is the JSON's (ASCII), ``text`` the report's; ``weights`` the contrast that
    is reported (``diff``); ``equivalence``: the claim is "about equal" rather than "greater"."""
    name: str
    text: str
    weights: Tuple[Tuple[str, float], ...]
    equivalence: bool = False

    @property
    def arms(self) -> Tuple[str, ...]:
        return tuple(a for a, _ in self.weights)


CLAIMS: Tuple[Claim, ...] = (
    Claim('scratch < joint_uniform', 'scratch < joint + uniform', (('joint_uniform', 1.0), ('scratch', -1.0))),
    Claim('joint_uniform ~= unipad', 'joint + uniform ≈ UniPAD-style', (('joint_uniform', 1.0), ('unipad', -1.0)),
          equivalence=True),
    Claim('unipad < joint_curvature', 'UniPAD-style < joint + curvature',
          (('joint_curvature', 1.0), ('unipad', -1.0))),
    Claim('joint_curvature < clap', 'joint + curvature < CLAP', (('clap', 1.0), ('joint_curvature', -1.0))),
    Claim('clap - scratch >= 2 * (unipad - scratch)', 'CLAP − scratch ≥ 2 × (UniPAD-style − scratch)',
          (('clap', 1.0), ('unipad', -2.0), ('scratch', 1.0))),
)


def verdict(diff: float, se: Optional[float], equivalence: bool = False,
            margin: float = EQUIVALENCE_MARGIN) -> str:
    """The verdict of one claim from its contrast ``diff`` and SE (module docstring)."""
    if se is None:
        return UNRESOLVED
    q = margin - abs(diff) if equivalence else diff
    if q > 2 * se:
        return SUPPORTED
    if q < -2 * se:
        return CONTRADICTED
    return UNRESOLVED


@dataclass(frozen=True)
class ClaimRow:
    """One claim at one measure and label fraction. ``diff`` / ``se`` are those of the claim's contrast (None
    when an arm is missing or, for ``se``, with a single seed); ``missing`` lists the arms without records."""
    claim: str
    measure: str
    fraction: float
    diff: Optional[float]
    se: Optional[float]
    verdict: str
    n: int
    paired: bool
    missing: Tuple[str, ...]

    def to_json(self) -> Dict:
        return dict(claim=self.claim, measure=self.measure, fraction=self.fraction, diff=self.diff, se=self.se,
                    verdict=self.verdict, n=self.n, paired=self.paired, missing=list(self.missing))


def claim_rows(cells: Cells, measure: str, fraction: float, claims: Sequence[Claim] = CLAIMS,
               margin: float = EQUIVALENCE_MARGIN) -> List[ClaimRow]:
    """One row per claim for ``measure`` ('probe' or 'finetune', whose cells these are) at ``fraction``."""
    rows = []
    for c in claims:
        missing = tuple(a for a in c.arms if not cells.get((a, float(fraction)), {}).get('mAP'))
        est = None if missing else contrast(cells, c.weights, fraction)
        if est is None:
            rows.append(ClaimRow(c.name, measure, float(fraction), None, None, MISSING, 0, False, missing))
        else:
            rows.append(ClaimRow(c.name, measure, float(fraction), est.value, est.se,
                                 verdict(est.value, est.se, c.equivalence, margin), est.n, est.paired, ()))
    return rows


def claim_text(name: str) -> str:
    """The report's wording of the claim named ``name``."""
    return next((c.text for c in CLAIMS if c.name == name), name)

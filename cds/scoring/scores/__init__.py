"""The registry of published scores, and the site settings that change how two items are read."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cds.scoring.model import Item, ScoreDefinition, is_true, one_of
from cds.scoring.scores.castle import CASTLE
from cds.scoring.scores.cl_score import CL_SCORE
from cds.scoring.scores.j_cto import J_CTO
from cds.scoring.scores.operator_cto import OPERATOR_CTO
from cds.scoring.scores.ora import ORA
from cds.scoring.scores.progress_complications import PROGRESS_COMPLICATIONS
from cds.scoring.scores.progress_cto import PROGRESS_CTO
from cds.scoring.scores.recharge import RECHARGE

# Contract order of docs/spec/inputs.md: the primary score first, then the comparators.
SCORES: tuple[ScoreDefinition, ...] = (
    OPERATOR_CTO,
    J_CTO,
    PROGRESS_CTO,
    RECHARGE,
    CL_SCORE,
    ORA,
    CASTLE,
    PROGRESS_COMPLICATIONS,
)


@dataclass(frozen=True)
class ScoringPolicy:
    """Readings a site may choose where the sources leave room (docs/spec/scores.md §5).

    Attributes:
        cl_score_any_prior_cabg: CL-score counts any previous CABG, as the original may, instead of
            CABG on the target vessel (the Operator-CTO paper's reading, the default).
        lm_ramus_as_lad: LM and ramus targets do not count as non-LAD in CL-score (default: they do).
    """

    cl_score_any_prior_cabg: bool = False
    lm_ramus_as_lad: bool = False


def _cl_item(item: Item, policy: ScoringPolicy) -> Item:
    if item.id == "prior_cabg_target_vessel" and policy.cl_score_any_prior_cabg:
        return replace(item, rule=is_true("prior_cabg"), label="previous CABG (any vessel)")
    if item.id == "non_lad" and policy.lm_ramus_as_lad:
        return replace(item, rule=one_of("target_vessel", "LCX", "RCA", "GRAFT"))
    return item


def definitions(policy: ScoringPolicy | None = None) -> tuple[ScoreDefinition, ...]:
    """The score definitions under a site's policy (the published defaults when None)."""
    if policy is None or policy == ScoringPolicy():
        return SCORES
    cl = replace(CL_SCORE, items=tuple(_cl_item(item, policy) for item in CL_SCORE.items))
    return tuple(cl if d.id == CL_SCORE.id else d for d in SCORES)

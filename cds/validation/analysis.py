"""Score every lesion of a cohort and gather, per score, what a quality officer needs to judge it.

Pure: a parsed `Cohort` in, a `ValidationResult` (pydantic, the `--json` contract) out.

A lesion whose inputs leave a score's total open (any unknown item) is excluded from *that* score
only, and counted with the inputs that were missing: nothing is imputed. Published estimates are
shown beside the site's rates in success terms; an estimate published for another outcome (J-CTO's
guidewire crossing within 30 min, a complication rate) is shown with that outcome named, never
converted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from cds.scoring.engine import score_all
from cds.scoring.estimate import wilson_interval
from cds.scoring.model import PublishedEstimate, ScoreDefinition
from cds.scoring.scores import SCORES, ScoringPolicy, definitions
from cds.validation import stats
from cds.validation.cohort import Cohort

PRIMARY = "operator_cto"
_SUCCESS_OUTCOMES = {"technical_success": False, "technical_failure": True}
"""Outcome of a published estimate → whether it must be inverted to read as technical success."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Published(_Model):
    proportion: float
    outcome: str
    as_success: float | None
    """The estimate as a technical success rate, when its outcome is technical success or failure."""
    successes: int | None
    n: int | None


class BandResult(_Model):
    successes: int
    n: int
    ci95: tuple[float, float]
    predicted: float | None
    """Mean success predicted by the site's logistic model of the score."""
    published: Published | None


class Excluded(_Model):
    count: int
    reasons: dict[str, int]
    """Missing input → lesions excluded with it unknown (a lesion may count under several)."""


class VsPrimary(_Model):
    n: int
    diff: float
    ci95: tuple[float, float]
    p: float | None


class HlGroupResult(_Model):
    label: str
    n: int
    observed: int
    expected: float


class AucResult(_Model):
    auc: float | None
    auc_ci95: tuple[float, float] | None


class ExperienceSplit(_Model):
    """Operator-CTO's key claim: the lesion points alone vs the total with the operator's experience."""

    n: int
    lesion_points: AucResult
    total: AucResult
    total_vs_lesion: VsPrimary | None
    bands_by_operator_points: dict[str, dict[str, BandResult]]


class ScoreValidation(_Model):
    id: str
    name: str
    outcome: str
    n: int
    events: int
    """Technical successes among the n lesions scored."""
    auc: float | None
    auc_ci95: tuple[float, float] | None
    hl_chi2: float | None
    hl_df: int
    hl_p: float | None
    hl_grouping: str
    hl_groups: list[HlGroupResult]
    logistic: tuple[float, float] | None
    """(intercept, slope) of logit P(success) = intercept + slope · score."""
    excluded: Excluded
    grouping: str
    """What `bands` are: the score's published bands, its strata, or its values."""
    bands: dict[str, BandResult]
    vs_operator_cto: VsPrimary | None
    points: list[float]
    outcomes: list[int]
    """The scored lesions' totals and outcomes, in file order (for the plots)."""
    experience: ExperienceSplit | None = None


class ValidationResult(_Model):
    source: str
    mappings: str | None = None
    """The mapping tables' version that read a FHIR cohort's inputs (None: a CSV of inputs); the
    same version as a service's `/readyz` and audit rows for the same table files."""
    lesions: int
    rows_rejected: int
    errors: list[str]
    absent_inputs: list[str]
    scores: dict[str, ScoreValidation]


@dataclass(frozen=True)
class _Scored:
    total: float | None
    missing: tuple[str, ...]
    band: str | None
    lesion: float | None = None
    operator: float | None = None


def _published(estimate: PublishedEstimate | None, outcome: str) -> Published | None:
    if estimate is None:
        return None
    invert = _SUCCESS_OUTCOMES.get(outcome)
    as_success = (
        None if invert is None else (1 - estimate.proportion if invert else estimate.proportion)
    )
    return Published(
        proportion=estimate.proportion,
        outcome=outcome,
        as_success=as_success,
        successes=estimate.successes,
        n=estimate.n,
    )


def _label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _strata(definition: ScoreDefinition, total: float) -> tuple[str, PublishedEstimate | None]:
    for s in definition.strata:
        if s.contains(total):
            low = "" if s.lower is None else _label(s.lower)
            high = "" if s.upper is None else _label(s.upper)
            name = f"≤ {high}" if not low else (f"≥ {low}" if not high else f"{low}–{high}")
            return name, s.estimate
    return "other", None


def _bands(
    definition: ScoreDefinition,
    totals: Sequence[float],
    outcomes: Sequence[int],
    hl: stats.HosmerLemeshow,
) -> tuple[str, dict[str, BandResult]]:
    groups: dict[str, list[int]] = {}
    predicted: dict[str, list[float]] = {}
    published: dict[str, PublishedEstimate | None] = {}
    if definition.bands:
        grouping = "bands"
        for band in definition.bands:
            groups[band.id], predicted[band.id], published[band.id] = [], [], band.estimate
    else:
        grouping = "strata" if definition.strata else "score values"
    for total, outcome in zip(totals, outcomes, strict=True):
        if definition.bands:
            key, estimate = definition.band_of(total).id, None
        elif definition.strata:
            key, estimate = _strata(definition, total)
        else:
            key, estimate = _label(total), None
        if key not in groups:
            groups[key], predicted[key], published[key] = [], [], estimate
        groups[key].append(outcome)
        p = hl.predict(total)
        if p is not None:
            predicted[key].append(p)
    if grouping == "score values":
        groups = dict(sorted(groups.items(), key=lambda kv: float(kv[0])))
    return grouping, {
        key: BandResult(
            successes=sum(ys),
            n=len(ys),
            ci95=wilson_interval(sum(ys), len(ys)),
            predicted=float(np.mean(predicted[key])) if predicted[key] else None,
            published=_published(published[key], definition.outcome),
        )
        for key, ys in groups.items()
        if ys
    }


def _auc(totals: Sequence[float], outcomes: Sequence[int]) -> AucResult:
    if len(set(outcomes)) < 2:
        return AucResult(auc=None, auc_ci95=None)
    result = stats.auc_delong(totals, outcomes)
    return AucResult(auc=result.auc, auc_ci95=result.ci95)


def _compare(first: list[float], second: list[float], outcomes: list[int]) -> VsPrimary | None:
    if len(set(outcomes)) < 2:
        return None
    c = stats.compare_delong(first, second, outcomes)
    return VsPrimary(n=c.n, diff=c.diff, ci95=c.ci95, p=c.p)


def _experience(
    definition: ScoreDefinition, scored: list[_Scored], outcomes: list[int]
) -> ExperienceSplit:
    rows = [
        (s.lesion, s.total, s.operator, y)
        for s, y in zip(scored, outcomes, strict=True)
        if s.lesion is not None and s.total is not None and s.operator is not None
    ]
    lesion = [r[0] for r in rows if r[0] is not None]
    total = [r[1] for r in rows if r[1] is not None]
    ys = [r[3] for r in rows]
    by_operator: dict[str, dict[str, BandResult]] = {}
    for op_points in sorted({r[2] for r in rows if r[2] is not None}):
        subset = [(r[0], r[3]) for r in rows if r[2] == op_points and r[0] is not None]
        counts: dict[str, list[int]] = {}
        for lesion_points, y in subset:
            counts.setdefault(definition.band_of(lesion_points).id, []).append(y)
        by_operator[_label(op_points)] = {
            band: BandResult(
                successes=sum(v),
                n=len(v),
                ci95=wilson_interval(sum(v), len(v)),
                predicted=None,
                published=None,
            )
            for band, v in counts.items()
        }
    # DeLong of the total against the lesion points: positive = experience adds discrimination.
    return ExperienceSplit(
        n=len(rows),
        lesion_points=_auc(lesion, ys),
        total=_auc(total, ys),
        total_vs_lesion=_compare(total, lesion, ys) if rows else None,
        bands_by_operator_points=by_operator,
    )


def analyse(cohort: Cohort, policy: ScoringPolicy | None = None) -> ValidationResult:
    """Score every lesion with every score and compute the statistics of each (module notes)."""
    defs = definitions(policy)
    per_score: dict[str, list[_Scored]] = {d.id: [] for d in defs}
    for lesion in cohort.lesions:
        report = score_all(lesion.inputs, policy)
        for d in defs:
            r = report.scores[d.id]
            extra = {}
            if d.id == PRIMARY:
                extra = {
                    "lesion": r.groups["lesion"].points,
                    "operator": r.groups["operator"].points,
                }
            per_score[d.id].append(_Scored(r.points, tuple(r.missing), r.band, **extra))
    # read_cohort requires the outcome column, so every lesion has one.
    outcomes_all = [int(lesion.technical_success or 0) for lesion in cohort.lesions]
    assert all(lesion.technical_success is not None for lesion in cohort.lesions)
    primary = per_score.get(PRIMARY, [])
    results: dict[str, ScoreValidation] = {}
    for d in defs:
        scored = per_score[d.id]
        keep = [i for i, s in enumerate(scored) if s.total is not None]
        reasons: Counter[str] = Counter()
        for s in scored:
            if s.total is None:
                reasons.update(s.missing or ("undetermined item",))
        totals = [float(scored[i].total) for i in keep]  # type: ignore[arg-type]
        ys = [outcomes_all[i] for i in keep]
        hl = (
            stats.hosmer_lemeshow(totals, ys)
            if len(set(ys)) == 2
            else stats.HosmerLemeshow(None, 0, None, "score_value", (), None, None)
        )
        grouping, bands = _bands(d, totals, ys, hl)
        vs = None
        if d.id != PRIMARY and primary:
            paired = [i for i in keep if primary[i].total is not None]
            vs = _compare(
                [float(primary[i].total) for i in paired],  # type: ignore[arg-type]
                [float(scored[i].total) for i in paired],  # type: ignore[arg-type]
                [outcomes_all[i] for i in paired],
            )
        auc = _auc(totals, ys)
        results[d.id] = ScoreValidation(
            id=d.id,
            name=d.name,
            outcome=d.outcome,
            n=len(keep),
            events=sum(ys),
            auc=auc.auc,
            auc_ci95=auc.auc_ci95,
            hl_chi2=hl.chi2,
            hl_df=hl.df,
            hl_p=hl.p,
            hl_grouping=hl.grouping,
            hl_groups=[HlGroupResult(**g.__dict__) for g in hl.groups],
            logistic=None if hl.intercept is None or hl.slope is None else (hl.intercept, hl.slope),
            excluded=Excluded(count=len(scored) - len(keep), reasons=dict(reasons.most_common())),
            grouping=grouping,
            bands=bands,
            vs_operator_cto=vs,
            points=totals,
            outcomes=ys,
            experience=_experience(d, scored, outcomes_all) if d.id == PRIMARY else None,
        )
    return ValidationResult(
        source=cohort.source,
        mappings=cohort.mappings,
        lesions=len(cohort.lesions),
        rows_rejected=len({e.row for e in cohort.errors}),
        errors=[str(e) for e in cohort.errors],
        absent_inputs=list(cohort.absent_inputs),
        scores=results,
    )


__all__ = ["PRIMARY", "SCORES", "ValidationResult", "analyse"]

"""Statistics of a local validation: discrimination (AUC, DeLong), calibration (Hosmer–Lemeshow).

Pure: arrays in, numbers out (no I/O, no clock). numpy/scipy/statsmodels come from the optional
`[validation]` extra.

Conventions, stated once:

* The outcome is technical success (1) or failure (0). Every score here rates *difficulty* (a higher
  total means a harder case), so its AUC is the probability that a failed lesion scores higher than a
  successful one, ties counting one half — the reading of Xiao 2021 (AUC 0.901 for Operator-CTO).
* DeLong's variance is computed once, from placement values (DeLong, DeLong & Clarke-Pearson,
  Biometrics 1988;44:837–845), with midranks as in Sun & Xu (IEEE Signal Process Lett
  2014;21:1389–1393). The confidence interval is the normal one, clipped to [0, 1], as pROC's
  `ci.auc(method="delong")`.
* Hosmer–Lemeshow fits logit P(success) = a + b·score (maximum likelihood, statsmodels) and compares
  observed and expected successes per group: groups of equal score when the score takes at most
  `max_groups` distinct values (integer scores on small cohorts: deciles would split ties
  arbitrarily), deciles of predicted risk otherwise; χ² on groups − 2 degrees of freedom
  (Hosmer & Lemeshow, Applied Logistic Regression, 3rd ed., §5.2.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from cds.scoring.estimate import Z_95

FloatArray = npt.NDArray[np.float64]
Grouping = Literal["score_value", "deciles"]


def _array(values: Sequence[float] | FloatArray) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _split(scores: FloatArray, success: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(failures, successes): for a difficulty score the failures are the 'positives'."""
    if scores.shape != success.shape or scores.ndim != 1:
        raise ValueError("scores and outcomes must be 1-D and of the same length")
    if not np.isin(success, (0.0, 1.0)).all():
        raise ValueError("outcomes must be 0 or 1")
    return scores[success == 0], scores[success == 1]


def _midranks(x: FloatArray) -> FloatArray:
    return np.asarray(stats.rankdata(x, method="average"), dtype=np.float64)


@dataclass(frozen=True)
class Placements:
    """DeLong's structural components of one or more scores on the same cases."""

    auc: FloatArray
    """AUC per score, shape (k,)."""
    v_pos: FloatArray
    """Per failure: share of successes it out-scores, shape (k, m)."""
    v_neg: FloatArray
    """Per success: share of failures out-scoring it, shape (k, n)."""

    @property
    def covariance(self) -> FloatArray:
        """DeLong's covariance matrix of the k AUCs."""
        m, n = self.v_pos.shape[1], self.v_neg.shape[1]
        s10 = np.atleast_2d(np.cov(self.v_pos, ddof=1)) if m > 1 else np.zeros((len(self.auc),) * 2)
        s01 = np.atleast_2d(np.cov(self.v_neg, ddof=1)) if n > 1 else np.zeros((len(self.auc),) * 2)
        return np.asarray(s10 / m + s01 / n, dtype=np.float64)


def placements(
    score_matrix: Sequence[Sequence[float]] | FloatArray, success: Sequence[int] | FloatArray
) -> Placements:
    """Placement values of k scores (rows of `score_matrix`) by midranks: O(k·N log N).

    Raises:
        ValueError: no failure or no success (the AUC is undefined).
    """
    matrix = np.atleast_2d(_array(score_matrix))  # type: ignore[arg-type]
    y = _array(success)
    pos_idx = np.flatnonzero(y == 0)
    neg_idx = np.flatnonzero(y == 1)
    _split(matrix[0], y)
    m, n = len(pos_idx), len(neg_idx)
    if m == 0 or n == 0:
        raise ValueError("AUC needs at least one success and one failure")
    aucs, v_pos, v_neg = [], [], []
    for row in matrix:
        pos, neg = row[pos_idx], row[neg_idx]
        both = _midranks(np.concatenate([pos, neg]))
        rank_pos, rank_neg = _midranks(pos), _midranks(neg)
        # Placement of a failure among successes = (its rank overall − its rank among failures) / n.
        vp = (both[:m] - rank_pos) / n
        vn = 1.0 - (both[m:] - rank_neg) / m
        aucs.append(vp.mean())
        v_pos.append(vp)
        v_neg.append(vn)
    return Placements(np.array(aucs), np.array(v_pos), np.array(v_neg))


@dataclass(frozen=True)
class Auc:
    auc: float
    ci95: tuple[float, float]
    se: float


def auc_delong(scores: Sequence[float] | FloatArray, success: Sequence[int] | FloatArray) -> Auc:
    """AUC of one difficulty score for technical success, with its DeLong 95 % CI."""
    p = placements([_array(scores)], _array(success))  # type: ignore[list-item]
    value = float(p.auc[0])
    se = math.sqrt(max(float(p.covariance[0, 0]), 0.0))
    return Auc(value, (max(0.0, value - Z_95 * se), min(1.0, value + Z_95 * se)), se)


@dataclass(frozen=True)
class Comparison:
    """DeLong's test of two correlated AUCs on the same cases: first minus second."""

    n: int
    diff: float
    ci95: tuple[float, float]
    z: float | None
    p: float | None
    """None when the two scores rank the cases identically (no variance to test)."""


def compare_delong(
    first: Sequence[float] | FloatArray,
    second: Sequence[float] | FloatArray,
    success: Sequence[int] | FloatArray,
) -> Comparison:
    p = placements(np.vstack([_array(first), _array(second)]), _array(success))
    cov = p.covariance
    diff = float(p.auc[0] - p.auc[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= 1e-15:
        return Comparison(len(_array(success)), diff, (diff, diff), None, None)
    se = math.sqrt(var)
    z = diff / se
    pvalue = float(2 * stats.norm.sf(abs(z)))
    return Comparison(
        len(_array(success)),
        diff,
        (diff - Z_95 * se, diff + Z_95 * se),
        z,
        pvalue,
    )


@dataclass(frozen=True)
class HlGroup:
    label: str
    n: int
    observed: int
    expected: float


@dataclass(frozen=True)
class HosmerLemeshow:
    chi2: float | None
    df: int
    p: float | None
    grouping: Grouping
    groups: tuple[HlGroup, ...]
    intercept: float | None
    slope: float | None
    """The fitted logistic model: logit P(success) = intercept + slope · score."""

    def predict(self, score: float) -> float | None:
        if self.intercept is None or self.slope is None:
            return None
        return 1.0 / (1.0 + math.exp(-(self.intercept + self.slope * score)))


def _logistic_fit(x: FloatArray, y: FloatArray) -> tuple[float, float] | None:
    """(intercept, slope) by maximum likelihood, or None when it does not exist (separation)."""
    import warnings

    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    if len(np.unique(x)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            fit = sm.Logit(y, sm.add_constant(x)).fit(disp=0, maxiter=100)
        except (PerfectSeparationWarning, ConvergenceWarning, np.linalg.LinAlgError, Exception):
            return None
    a, b = (float(v) for v in fit.params)
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    return a, b


def hosmer_lemeshow(
    scores: Sequence[float] | FloatArray,
    success: Sequence[int] | FloatArray,
    max_groups: int = 10,
) -> HosmerLemeshow:
    """Hosmer–Lemeshow goodness of fit of a logistic model of the score (see the module notes)."""
    x, y = _array(scores), _array(success)
    _split(x, y)
    fit = _logistic_fit(x, y)
    values = np.unique(x)
    grouping: Grouping = "score_value" if len(values) <= max_groups else "deciles"
    if fit is None:
        return HosmerLemeshow(None, 0, None, grouping, (), None, None)
    a, b = fit
    predicted = 1.0 / (1.0 + np.exp(-(a + b * x)))
    if grouping == "score_value":
        keys = [(f"{_fmt(v)}", x == v) for v in values]
    else:
        order = np.argsort(predicted, kind="stable")
        keys = []
        for i, chunk in enumerate(np.array_split(order, max_groups)):
            mask = np.zeros(len(x), dtype=bool)
            mask[chunk] = True
            keys.append((f"decile {i + 1}", mask))
    groups: list[HlGroup] = []
    chi2 = 0.0
    for label, mask in keys:
        n = int(mask.sum())
        if n == 0:
            continue
        observed = int(y[mask].sum())
        expected = float(predicted[mask].sum())
        groups.append(HlGroup(label, n, observed, expected))
        # Both cells (successes and failures) of the group, as Hosmer & Lemeshow's Ĉ.
        for o, e in ((observed, expected), (n - observed, n - expected)):
            if e > 0:
                chi2 += (o - e) ** 2 / e
    df = len(groups) - 2
    if df < 1:
        return HosmerLemeshow(None, df, None, grouping, tuple(groups), a, b)
    return HosmerLemeshow(chi2, df, float(stats.chi2.sf(chi2, df)), grouping, tuple(groups), a, b)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def roc_points(
    scores: Sequence[float] | FloatArray, success: Sequence[int] | FloatArray
) -> tuple[list[float], list[float]]:
    """(false positive rate, true positive rate) of 'score ≥ t predicts failure' for every t."""
    x, y = _array(scores), _array(success)
    failures, successes = _split(x, y)
    fpr, tpr = [0.0], [0.0]
    for t in sorted(np.unique(x), reverse=True):
        tpr.append(float((failures >= t).mean()) if len(failures) else 0.0)
        fpr.append(float((successes >= t).mean()) if len(successes) else 0.0)
    return fpr, tpr

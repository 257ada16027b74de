"""The statistics against published results and independent computations on generated cohorts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from cds.validation.stats import auc_delong, compare_delong, hosmer_lemeshow, roc_points


def _psi(failure: float, success: float) -> float:
    return 1.0 if failure > success else 0.5 if failure == success else 0.0


def _brute_delong(scores: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong 1988 straight from the definition: O(k·m·n) kernel sums, no ranks."""
    fail, succ = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    m, n = len(fail), len(succ)
    v10 = np.array([[sum(_psi(s[i], s[j]) for j in succ) / n for i in fail] for s in scores])
    v01 = np.array([[sum(_psi(s[i], s[j]) for i in fail) / m for j in succ] for s in scores])
    aucs = v10.mean(axis=1)
    k = len(scores)
    cov = np.zeros((k, k))
    for a in range(k):
        for b in range(k):
            s10 = sum((v10[a, i] - aucs[a]) * (v10[b, i] - aucs[b]) for i in range(m)) / (m - 1)
            s01 = sum((v01[a, j] - aucs[a]) * (v01[b, j] - aucs[b]) for j in range(n)) / (n - 1)
            cov[a, b] = s10 / m + s01 / n
    return aucs, cov


def _cohort(seed: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two integer difficulty scores (many ties) and an outcome that depends on the first."""
    rng = np.random.default_rng(seed)
    first = rng.integers(-4, 10, size).astype(float)
    second = first + rng.integers(-3, 4, size)
    p_success = 1 / (1 + np.exp(-(3 - 0.6 * first)))
    y = (rng.random(size) < p_success).astype(float)
    return first, second, y


def test_hanley_mcneil_1982_worked_example() -> None:
    # Hanley & McNeil, Radiology 1982;143:29–36, Table 1: CT ratings 1–5 of 58 normal and 51
    # abnormal patients; published area 0.893.
    normal, abnormal = [33, 6, 6, 11, 2], [3, 2, 2, 11, 33]
    scores = [r for r, c in enumerate(normal, 1) for _ in range(c)]
    scores += [r for r, c in enumerate(abnormal, 1) for _ in range(c)]
    y = [1] * sum(normal) + [0] * sum(abnormal)
    result = auc_delong(scores, y)
    assert round(result.auc, 3) == 0.893
    # Hanley & McNeil's own SE is 0.032; DeLong's nonparametric SE is close to it.
    assert abs(result.se - 0.032) < 0.003


def test_band_counts_of_the_paper_give_the_grouped_auc() -> None:
    # Xiao 2021 Table 2: 102/103, 21/24, 7/13, 1/4 → P(failure band > success band) + ½ ties.
    counts = [(102, 103), (21, 24), (7, 13), (1, 4)]
    bands = [b for b, (_, n) in enumerate(counts) for _ in range(n)]
    y = [1 if i < s else 0 for s, n in counts for i in range(n)]
    assert auc_delong(bands, y).auc == pytest.approx(1539 / 1703)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_auc_and_ci_match_scikit_learn_and_brute_force_delong(seed: int) -> None:
    first, _, y = _cohort(seed, 150)
    result = auc_delong(first, y)
    assert result.auc == pytest.approx(roc_auc_score(1 - y, first))
    aucs, cov = _brute_delong([first], y)
    assert result.se == pytest.approx(math.sqrt(cov[0, 0]))
    z = sps.norm.ppf(0.975)
    assert result.ci95[0] == pytest.approx(max(0.0, aucs[0] - z * result.se))
    assert result.ci95[1] == pytest.approx(min(1.0, aucs[0] + z * result.se))


@pytest.mark.parametrize("seed", [4, 5])
def test_pairwise_delong_matches_brute_force(seed: int) -> None:
    first, second, y = _cohort(seed, 120)
    comparison = compare_delong(first, second, y)
    aucs, cov = _brute_delong([first, second], y)
    assert comparison.diff == pytest.approx(aucs[0] - aucs[1])
    se = math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert comparison.z == pytest.approx((aucs[0] - aucs[1]) / se)
    assert comparison.p == pytest.approx(2 * sps.norm.sf(abs(comparison.z or 0)))
    assert comparison.n == len(y)


def test_identical_scores_have_no_test() -> None:
    first, _, y = _cohort(6, 80)
    comparison = compare_delong(first, first * 2 + 1, y)
    assert comparison.diff == pytest.approx(0.0)
    assert comparison.p is None


def test_auc_needs_both_outcomes() -> None:
    with pytest.raises(ValueError, match="one success and one failure"):
        auc_delong([1, 2, 3], [1, 1, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        auc_delong([1, 2, 3], [1, 0, 2])


def test_hosmer_lemeshow_groups_by_value_and_matches_an_independent_fit() -> None:
    first, _, y = _cohort(7, 300)
    clipped = np.clip(first, 0, 6)  # 7 distinct values: grouped by value
    hl = hosmer_lemeshow(clipped, y)
    assert hl.grouping == "score_value"
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(clipped[:, None], y)
    assert hl.intercept == pytest.approx(reference.intercept_[0], abs=1e-4)
    assert hl.slope == pytest.approx(reference.coef_[0, 0], abs=1e-4)
    # Ĉ recomputed from the independent fit, group by group.
    p = reference.predict_proba(clipped[:, None])[:, 1]
    chi2 = 0.0
    for v in np.unique(clipped):
        mask = clipped == v
        o, e, n = y[mask].sum(), p[mask].sum(), mask.sum()
        chi2 += (o - e) ** 2 / e + ((n - o) - (n - e)) ** 2 / (n - e)
    assert hl.chi2 == pytest.approx(chi2, rel=1e-4)
    assert hl.df == len(np.unique(clipped)) - 2
    assert hl.p == pytest.approx(sps.chi2.sf(chi2, hl.df), rel=1e-3)
    assert sum(g.n for g in hl.groups) == len(y)


def test_hosmer_lemeshow_uses_deciles_for_many_values() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=400)
    y = (rng.random(400) < 1 / (1 + np.exp(-(1 - x)))).astype(float)
    hl = hosmer_lemeshow(x, y)
    assert hl.grouping == "deciles"
    assert len(hl.groups) == 10
    assert hl.df == 8
    assert hl.p is not None
    assert 0 <= hl.p <= 1


def test_hosmer_lemeshow_without_a_fit_says_so() -> None:
    # Perfect separation: no maximum-likelihood fit exists, so no χ² rather than a wrong one.
    hl = hosmer_lemeshow([0, 0, 1, 1, 2, 2], [1, 1, 1, 0, 0, 0])
    assert hl.chi2 is None
    assert hl.p is None


def test_roc_points_end_at_the_corner_and_integrate_to_the_auc() -> None:
    first, _, y = _cohort(9, 100)
    fpr, tpr = roc_points(first, y)
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    area = sum(
        (b - a) * (c + d) / 2 for a, b, c, d in zip(fpr, fpr[1:], tpr, tpr[1:], strict=False)
    )
    assert area == pytest.approx(auc_delong(first, y).auc)

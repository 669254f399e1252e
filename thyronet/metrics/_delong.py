"""DeLong variance, covariance and tests of AUCs, as R's pROC computes them.

The placements are computed with the fast algorithm of Sun & Xu (2014): one
sort per score and midranks for ties, so the cost is O(n log n) rather than the
O(n_pos * n_neg) of the original DeLong et al. (1988) definition.

Conventions (the same as pROC with ``direction = "<"``): a higher score means
the positive class (label 1); tied positive/negative pairs count one half; the
direction is never flipped, so an AUC below 0.5 is reported as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from thyronet.metrics._validation import (
    check_confidence,
    check_labels,
    check_min_per_class,
    check_scores,
)

__all__ = [
    "DeLongTest",
    "UnpairedDeLongTest",
    "delong_covariance",
    "delong_test",
    "delong_test_unpaired",
    "delong_variance",
]


def _midranks_sorted(values: np.ndarray) -> np.ndarray:
    """Midranks (1-based, ties averaged) of an already sorted 1-D array."""
    n = values.size
    if n == 0:
        return np.empty(0)
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    ends = np.append(starts[1:], n)
    return np.repeat((starts + ends + 1) / 2.0, ends - starts)


def _placements(labels: np.ndarray, score: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong placements of one score (Sun & Xu 2014).

    Returns ``(auc, v10, v01)``. The AUC comes from the exact (half-integer)
    rank sum, so equal AUCs of different scores compare exactly equal.
    ``v10[i]`` is the share of negatives ranked below positive ``i`` (ties
    count 1/2); ``v01[j]`` the share of positives ranked above negative ``j``.
    Both follow the subjects' original order within their class, so the
    placements of different scores of the same subjects align.
    """
    order = np.argsort(score)
    ordered = score[order]
    lab = labels[order]
    m = int(lab.sum())
    n = lab.size - m
    combined = _midranks_sorted(ordered)
    pos_rank = _midranks_sorted(ordered[lab])
    neg_rank = _midranks_sorted(ordered[~lab])
    pos_combined = combined[lab]
    auc = (pos_combined.sum() - m * (m + 1) / 2.0) / (m * n)
    place = np.empty(score.size)
    place[order[lab]] = (pos_combined - pos_rank) / n
    place[order[~lab]] = 1.0 - (combined[~lab] - neg_rank) / m
    return float(auc), place[labels], place[~labels]


def _auc_and_covariance(
    labels: np.ndarray, scores: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of ``k`` scores of the same subjects and their ``(k, k)`` DeLong covariance."""
    v10 = np.empty((len(scores), int(labels.sum())))
    v01 = np.empty((len(scores), labels.size - v10.shape[1]))
    aucs = np.empty(len(scores))
    for i, score in enumerate(scores):
        aucs[i], v10[i], v01[i] = _placements(labels, score)
    m, n = v10.shape[1], v01.shape[1]
    d10 = v10 - aucs[:, None]
    d01 = v01 - aucs[:, None]
    cov = (d10 @ d10.T) / ((m - 1) * m) + (d01 @ d01.T) / ((n - 1) * n)
    return aucs, cov


def _auc(labels: np.ndarray, score: np.ndarray) -> float:
    """AUC (Mann-Whitney, ties count 1/2) from midranks."""
    order = np.argsort(score)
    ranks = _midranks_sorted(score[order])
    m = int(labels.sum())
    n = labels.size - m
    rank_sum = ranks[labels[order]].sum()
    return float((rank_sum - m * (m + 1) / 2.0) / (m * n))


def _two_sided_normal(z: float) -> float:
    return float(2.0 * stats.norm.sf(abs(z))) if np.isfinite(z) else 0.0


def delong_variance(y_true, y_score) -> float:
    """DeLong variance of the AUC of one score, as pROC's ``var(roc)``.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 labels, 1 = positive class.
    y_score : array-like of shape (n_subjects,)
        Scores; a higher score means more likely positive.

    Returns
    -------
    float
        ``S10 / n_pos + S01 / n_neg``, the sample variances (``ddof=1``) of the
        placements divided by the class sizes.

    Raises
    ------
    ValueError
        On a single class, fewer than 2 subjects of a class (the variance is
        undefined; pROC returns NA), NaN/inf scores or different lengths.

    Examples
    --------
    >>> from thyronet.metrics import delong_variance
    >>> round(delong_variance([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.7]), 6)
    0.024691
    """
    labels = check_labels(y_true)
    score = check_scores(y_score, "y_score", n=labels.size)
    check_min_per_class(labels, 2, "the DeLong variance")
    _, cov = _auc_and_covariance(labels, [score])
    return float(cov[0, 0])


def delong_covariance(y_true, score_a, score_b) -> float:
    """DeLong covariance of the AUCs of two scores of the same subjects (pROC's ``cov``).

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 labels, 1 = positive class.
    score_a, score_b : array-like of shape (n_subjects,)
        Two scores of the same subjects, in the same order.

    Returns
    -------
    float
        The covariance of the two AUC estimates.

    Examples
    --------
    >>> from thyronet.metrics import delong_covariance
    >>> y = [0, 0, 1, 1, 0, 1]
    >>> round(delong_covariance(y, [0.1, 0.4, 0.35, 0.8, 0.2, 0.7], [1, 3, 2, 6, 2, 5]), 6)
    0.027778
    """
    labels = check_labels(y_true)
    a = check_scores(score_a, "score_a", n=labels.size)
    b = check_scores(score_b, "score_b", n=labels.size)
    check_min_per_class(labels, 2, "the DeLong covariance")
    _, cov = _auc_and_covariance(labels, [a, b])
    return float(cov[0, 1])


@dataclass(frozen=True)
class DeLongTest:
    """Result of :func:`delong_test` (paired DeLong test of two correlated AUCs).

    Attributes
    ----------
    auc_a, auc_b : float
        AUC of each score.
    difference : float
        ``auc_a - auc_b``.
    ci_low, ci_high : float
        Confidence interval of the difference (not clipped).
    z : float
        ``difference / sqrt(var_a + var_b - 2 covariance)``.
    p_value : float
        Two-sided P value from the standard normal distribution.
    var_a, var_b, covariance : float
        DeLong variances and covariance of the two AUCs.
    confidence : float
        Level of the interval.

    Examples
    --------
    >>> from thyronet.metrics import delong_test
    >>> t = delong_test([0, 0, 1, 1, 0, 1], [1, 2, 3, 6, 4, 5], [2, 1, 4, 3, 6, 5])
    >>> t.auc_a, round(t.difference, 4)
    (0.8888888888888888, 0.2222)
    """

    auc_a: float
    auc_b: float
    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    var_a: float
    var_b: float
    covariance: float
    confidence: float = 0.95


def _paired_from_covariance(
    aucs: np.ndarray, cov: np.ndarray, i: int, j: int, confidence: float
) -> DeLongTest:
    difference = float(aucs[i] - aucs[j])
    sigma = float(np.sqrt(max(cov[i, i] + cov[j, j] - 2.0 * cov[i, j], 0.0)))
    if sigma > 0:
        z = difference / sigma
    elif difference == 0:
        z = 0.0  # identical curves: pROC also reports Z = 0
    else:
        z = float(np.copysign(np.inf, difference))
    crit = float(stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    return DeLongTest(
        auc_a=float(aucs[i]),
        auc_b=float(aucs[j]),
        difference=difference,
        ci_low=difference - crit * sigma,
        ci_high=difference + crit * sigma,
        z=float(z),
        p_value=_two_sided_normal(z),
        var_a=float(cov[i, i]),
        var_b=float(cov[j, j]),
        covariance=float(cov[i, j]),
        confidence=confidence,
    )


def delong_test(y_true, score_a, score_b, *, confidence: float = 0.95) -> DeLongTest:
    """Paired DeLong test of two correlated AUCs (pROC ``roc.test(method = "delong")``).

    Both scores belong to the same subjects. The statistic is
    ``z = (auc_a - auc_b) / sqrt(var_a + var_b - 2 cov)`` with DeLong
    variances and covariance, and the P value is two-sided. When both scores
    rank the subjects identically (zero difference and zero variance) ``z`` is
    0 and the P value 1, as in pROC.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 labels, 1 = positive class.
    score_a, score_b : array-like of shape (n_subjects,)
        Two scores of the same subjects; higher = more likely positive.
    confidence : float, default=0.95
        Level of the confidence interval of the difference.

    Returns
    -------
    DeLongTest

    Raises
    ------
    ValueError
        On a single class, fewer than 2 subjects of a class, NaN/inf scores or
        different lengths.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.metrics import delong_test
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> good, weak = y + rng.normal(0, 0.7, 200), y + rng.normal(0, 2.0, 200)
    >>> result = delong_test(y, good, weak)
    >>> result.auc_a > result.auc_b, result.p_value < 0.05
    (True, True)
    """
    confidence = check_confidence(confidence)
    labels = check_labels(y_true)
    a = check_scores(score_a, "score_a", n=labels.size)
    b = check_scores(score_b, "score_b", n=labels.size)
    check_min_per_class(labels, 2, "the DeLong test")
    aucs, cov = _auc_and_covariance(labels, [a, b])
    return _paired_from_covariance(aucs, cov, 0, 1, confidence)


@dataclass(frozen=True)
class UnpairedDeLongTest:
    """Result of :func:`delong_test_unpaired` (two independent cohorts).

    Attributes
    ----------
    auc_a, auc_b : float
        AUC in each cohort.
    statistic : float
        ``(auc_a - auc_b) / sqrt(var_a + var_b)`` (pROC's ``D``).
    df : float
        Welch-Satterthwaite degrees of freedom (fractional).
    p_value : float
        Two-sided P value from Student's t with ``df`` degrees of freedom.
    var_a, var_b : float
        DeLong variance of each AUC.

    Examples
    --------
    >>> from thyronet.metrics import delong_test_unpaired
    >>> t = delong_test_unpaired([0, 0, 1, 1], [1, 2, 3, 4], [0, 1, 0, 1, 1], [1, 2, 3, 4, 5])
    >>> t.auc_a, round(t.auc_b, 4), t.var_a
    (1.0, 0.8333, 0.0)
    """

    auc_a: float
    auc_b: float
    statistic: float
    df: float
    p_value: float
    var_a: float
    var_b: float


def delong_test_unpaired(y_a, score_a, y_b, score_b) -> UnpairedDeLongTest:
    """Unpaired DeLong test of two AUCs from independent cohorts.

    Exactly pROC's ``roc.test(roc_a, roc_b, paired = FALSE, method = "delong")``:
    ``D = (auc_a - auc_b) / sqrt(V_a + V_b)`` with DeLong variances ``V``, and
    a two-sided P value from Student's t with the Welch-type degrees of freedom
    ``(V_a + V_b)^2 / (V_a^2 / (N_a - 1) + V_b^2 / (N_b - 1))`` where ``N`` is
    the number of subjects of a cohort. When both variances are 0 (both AUCs
    are 0 or 1) ``df`` is NaN and the statistic is 0 (P = 1) for equal AUCs,
    infinite (P = 0) otherwise.

    Parameters
    ----------
    y_a, score_a : array-like
        Labels (0/1) and scores of cohort a.
    y_b, score_b : array-like
        Labels (0/1) and scores of cohort b.

    Returns
    -------
    UnpairedDeLongTest

    Raises
    ------
    ValueError
        When a cohort has fewer than 2 subjects of a class (its DeLong
        variance is undefined; pROC returns NA there), a single class,
        NaN/inf scores or mismatched lengths.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.metrics import delong_test_unpaired
    >>> rng = np.random.default_rng(1)
    >>> y_a, y_b = rng.integers(0, 2, 150), rng.integers(0, 2, 120)
    >>> res = delong_test_unpaired(y_a, y_a + rng.normal(0, 1, 150),
    ...                            y_b, y_b + rng.normal(0, 1, 120))
    >>> bool(0 < res.p_value <= 1), bool(res.df > 100)
    (True, True)
    """
    la = check_labels(y_a, "y_a")
    sa = check_scores(score_a, "score_a", n=la.size, n_name="y_a")
    lb = check_labels(y_b, "y_b")
    sb = check_scores(score_b, "score_b", n=lb.size, n_name="y_b")
    check_min_per_class(la, 2, "the DeLong variance of cohort a", "y_a")
    check_min_per_class(lb, 2, "the DeLong variance of cohort b", "y_b")
    auc_a, cov_a = _auc_and_covariance(la, [sa])
    auc_b, cov_b = _auc_and_covariance(lb, [sb])
    var_a, var_b = float(cov_a[0, 0]), float(cov_b[0, 0])
    difference = float(auc_a[0] - auc_b[0])
    total = var_a + var_b
    if total > 0:
        statistic = difference / np.sqrt(total)
        df = total**2 / (var_a**2 / (la.size - 1) + var_b**2 / (lb.size - 1))
        p_value = float(2.0 * stats.t.sf(abs(statistic), df))
    else:
        df = float("nan")
        statistic = 0.0 if difference == 0 else float(np.copysign(np.inf, difference))
        p_value = 1.0 if difference == 0 else 0.0
    return UnpairedDeLongTest(
        auc_a=float(auc_a[0]),
        auc_b=float(auc_b[0]),
        statistic=float(statistic),
        df=float(df),
        p_value=p_value,
        var_a=var_a,
        var_b=var_b,
    )

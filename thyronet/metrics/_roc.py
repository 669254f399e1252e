"""AUC with a confidence interval (DeLong, logit DeLong or bootstrap) and the Youden threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from scipy import stats
from sklearn.metrics import roc_curve
from sklearn.utils import check_random_state

from thyronet.metrics._delong import _auc, _auc_and_covariance, _placements
from thyronet.metrics._validation import (
    check_confidence,
    check_labels,
    check_min_per_class,
    check_positive_int,
    check_scores,
)

__all__ = ["AUCInterval", "YoudenThreshold", "roc_auc_ci", "youden_threshold"]

_CHUNK_CELLS = 2_000_000  # resample-by-subject cells held in memory at once


@dataclass(frozen=True)
class AUCInterval:
    """An AUC with its confidence interval; unpacks as ``auc, low, high``.

    Attributes
    ----------
    auc : float
        AUC of the full sample.
    low, high : float
        Confidence limits (the DeLong interval is clipped to [0, 1], as in pROC;
        the logit DeLong interval lies inside (0, 1) by construction).
    confidence : float
        Level of the interval.
    method : {"delong", "delong_logit", "bootstrap", "bootstrap_bca"}
        How the interval was computed (``"bootstrap"`` is the percentile
        interval, ``"bootstrap_bca"`` the BCa one).
    variance : float or None
        DeLong variance of the AUC (both DeLong methods), else ``None``.
    n_bootstraps : int or None
        Number of bootstrap resamples used (``method="bootstrap"``); resamples
        with a single class, possible only when ``stratified=False``, are
        dropped as pROC does.

    Examples
    --------
    >>> from thyronet.metrics import roc_auc_ci
    >>> auc, low, high = roc_auc_ci([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.7])
    >>> round(auc, 3)
    0.889
    """

    auc: float
    low: float
    high: float
    confidence: float = 0.95
    method: str = "delong"
    variance: float | None = None
    n_bootstraps: int | None = None

    def __iter__(self):
        return iter((self.auc, self.low, self.high))

    def __str__(self) -> str:
        return f"{self.auc:.3f} ({self.low:.3f}-{self.high:.3f})"


def _counts(indices: np.ndarray, size: int) -> np.ndarray:
    """Row-wise multiplicities: ``indices`` (b, k) in [0, size) -> counts (b, size)."""
    b = indices.shape[0]
    flat = indices + (np.arange(b) * size)[:, None]
    return np.bincount(flat.ravel(), minlength=b * size).reshape(b, size)


def _bootstrap_aucs(
    labels: np.ndarray,
    score: np.ndarray,
    n_bootstraps: int,
    stratified: bool,
    rng: np.random.RandomState,
) -> np.ndarray:
    """AUCs of bootstrap resamples, by weighting subjects with their multiplicities.

    Each positive's contribution is the weighted count of negatives below it
    (ties 1/2), read from a cumulative sum of negative weights in score order,
    so a resample costs O(n) instead of a sort.
    """
    pos = score[labels]
    neg_order = np.argsort(score[~labels])
    neg_sorted = score[~labels][neg_order]
    m, n = pos.size, neg_sorted.size
    below = np.searchsorted(neg_sorted, pos, side="left")
    upto = np.searchsorted(neg_sorted, pos, side="right")
    total = labels.size
    pos_idx = np.flatnonzero(labels)
    neg_idx = np.flatnonzero(~labels)[neg_order]
    chunk = max(1, _CHUNK_CELLS // total)
    aucs = np.empty(n_bootstraps)
    for start in range(0, n_bootstraps, chunk):
        b = min(chunk, n_bootstraps - start)
        if stratified:
            w_pos = _counts(rng.randint(0, m, size=(b, m)), m)
            w_neg = _counts(rng.randint(0, n, size=(b, n)), n)
        else:
            w_all = _counts(rng.randint(0, total, size=(b, total)), total)
            w_pos, w_neg = w_all[:, pos_idx], w_all[:, neg_idx]
        cum = np.zeros((b, n + 1))
        np.cumsum(w_neg, axis=1, out=cum[:, 1:])
        less = cum[:, below]
        ties = cum[:, upto] - less
        wins = (w_pos * (less + 0.5 * ties)).sum(axis=1)
        m_b, n_b = w_pos.sum(axis=1), w_neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            aucs[start : start + b] = np.where((m_b > 0) & (n_b > 0), wins / (m_b * n_b), np.nan)
    return aucs


def roc_auc_ci(
    y_true,
    y_score,
    *,
    method: Literal["delong", "delong_logit", "bootstrap"] = "delong",
    confidence: float = 0.95,
    n_bootstraps: int = 2000,
    stratified: bool = True,
    random_state=None,
    bootstrap_ci: Literal["percentile", "bca"] = "percentile",
) -> AUCInterval:
    """AUC with a confidence interval, as pROC's ``ci.auc``.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 labels, 1 = positive class.
    y_score : array-like of shape (n_subjects,)
        Scores; a higher score means more likely positive. The direction is
        never flipped: a model worse than chance gets an AUC below 0.5.
    method : {"delong", "delong_logit", "bootstrap"}, default="delong"
        ``"delong"``: ``auc +/- z * sqrt(DeLong variance)``, clipped to
        [0, 1] (pROC's interval). ``"delong_logit"``: the same variance on the
        logit scale by the delta method, ``logit(auc) +/- z * se / (auc * (1 -
        auc))``, transformed back; it stays inside (0, 1) and is asymmetric
        near 1, where the plain interval is too wide above and too narrow
        below (it collapses to the point when the AUC is exactly 0 or 1, whose
        DeLong variance is 0). ``"bootstrap"``: an interval from the AUCs of
        ``n_bootstraps`` resamples, see ``bootstrap_ci``.
    confidence : float, default=0.95
        Level of the interval.
    n_bootstraps : int, default=2000
        Number of bootstrap resamples.
    stratified : bool, default=True
        Resample positives and negatives separately, keeping the class sizes
        (pROC's default), so no resample has a single class. Otherwise resample
        subjects and drop single-class resamples.
    random_state : int, RandomState instance or None
        Seed of the bootstrap.
    bootstrap_ci : {"percentile", "bca"}, default="percentile"
        With ``method="bootstrap"``: ``"percentile"`` takes quantiles (R's
        default type 7) of the bootstrap AUCs, as pROC does; ``"bca"`` the
        bias-corrected and accelerated interval (Efron & Tibshirani 1993,
        14.3), its bias correction from the share of bootstrap AUCs below the
        AUC (ties count 1/2) and its acceleration from the jackknife --
        leave-one-positive-out and leave-one-negative-out as two samples when
        ``stratified``, leave-one-subject-out otherwise -- exactly as
        ``scipy.stats.bootstrap(method="BCa")`` computes them.

    Returns
    -------
    AUCInterval
        Unpacks as ``auc, low, high``.

    Raises
    ------
    ValueError
        On a single class (or, for DeLong, fewer than 2 subjects of a class),
        NaN/inf scores or different lengths.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.metrics import roc_auc_ci
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> score = y + rng.normal(0, 1, 300)
    >>> auc, low, high = roc_auc_ci(y, score)
    >>> bool(low < auc < high)
    True
    >>> boot = roc_auc_ci(y, score, method="bootstrap", n_bootstraps=500, random_state=0)
    >>> bool(abs(boot.low - low) < 0.02)
    True
    >>> logit = roc_auc_ci(y, score, method="delong_logit")
    >>> bool(0 < logit.low < auc < logit.high < 1)
    True
    >>> bca = roc_auc_ci(y, score, method="bootstrap", bootstrap_ci="bca", random_state=0)
    >>> bca.method
    'bootstrap_bca'
    """
    if method not in ("delong", "delong_logit", "bootstrap"):
        raise ValueError(f"method must be 'delong', 'delong_logit' or 'bootstrap'; got {method!r}")
    if bootstrap_ci not in ("percentile", "bca"):
        raise ValueError(f"bootstrap_ci must be 'percentile' or 'bca'; got {bootstrap_ci!r}")
    confidence = check_confidence(confidence)
    labels = check_labels(y_true)
    score = check_scores(y_score, "y_score", n=labels.size)
    alpha = 1.0 - confidence
    if method == "delong_logit":
        return _delong_logit(labels, score, confidence)
    if method == "delong":
        check_min_per_class(labels, 2, "the DeLong confidence interval")
        aucs, cov = _auc_and_covariance(labels, [score])
        auc, var = float(aucs[0]), float(cov[0, 0])
        half = float(stats.norm.ppf(1.0 - alpha / 2.0)) * np.sqrt(var)
        return AUCInterval(
            auc,
            float(max(auc - half, 0.0)),
            float(min(auc + half, 1.0)),
            confidence,
            "delong",
            variance=var,
        )
    n_bootstraps = check_positive_int(n_bootstraps, "n_bootstraps")
    rng = check_random_state(random_state)
    boot = _bootstrap_aucs(labels, score, n_bootstraps, bool(stratified), rng)
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        raise ValueError("every bootstrap resample had a single class; use stratified=True")
    auc = _auc(labels, score)
    levels = np.array([alpha / 2, 1 - alpha / 2])
    if bootstrap_ci == "bca":
        levels = _bca_levels(auc, boot, _jackknife_aucs(labels, score, bool(stratified)), alpha)
    low, high = np.percentile(boot, 100 * levels)
    return AUCInterval(
        auc,
        float(low),
        float(high),
        confidence,
        "bootstrap_bca" if bootstrap_ci == "bca" else "bootstrap",
        n_bootstraps=int(boot.size),
    )


def _delong_logit(labels: np.ndarray, score: np.ndarray, confidence: float) -> AUCInterval:
    """DeLong interval on the logit scale (delta method), transformed back."""
    check_min_per_class(labels, 2, "the DeLong confidence interval")
    aucs, cov = _auc_and_covariance(labels, [score])
    auc, var = float(aucs[0]), float(cov[0, 0])
    if auc <= 0.0 or auc >= 1.0:
        low = high = auc  # DeLong variance is 0 and the logit infinite: no interval
    else:
        centre = np.log(auc) - np.log1p(-auc)
        half = float(stats.norm.ppf(0.5 + confidence / 2.0)) * np.sqrt(var) / (auc * (1 - auc))
        low = float(1.0 / (1.0 + np.exp(-(centre - half))))
        high = float(1.0 / (1.0 + np.exp(-(centre + half))))
    return AUCInterval(auc, low, high, confidence, "delong_logit", variance=var)


def _jackknife_aucs(labels: np.ndarray, score: np.ndarray, stratified: bool) -> list[np.ndarray]:
    """Leave-one-out AUCs, one array per resampled group (positives, negatives; or all).

    From the DeLong placements: leaving out positive ``i`` gives
    ``(m * auc - v10[i]) / (m - 1)``, leaving out negative ``j`` gives
    ``(n * auc - v01[j]) / (n - 1)``.
    """
    auc, v10, v01 = _placements(labels, score)
    m, n = v10.size, v01.size
    with np.errstate(divide="ignore", invalid="ignore"):
        without_pos = (m * auc - v10) / (m - 1)
        without_neg = (n * auc - v01) / (n - 1)
    if stratified:
        return [without_pos, without_neg]
    out = np.empty(labels.size)
    out[labels], out[~labels] = without_pos, without_neg
    return [out]


def _bca_levels(
    estimate: float, boot: np.ndarray, jackknife: list[np.ndarray], alpha: float
) -> np.ndarray:
    """Quantile levels of the BCa interval (scipy.stats.bootstrap's ``_bca_interval``)."""
    share = (np.count_nonzero(boot < estimate) + np.count_nonzero(boot <= estimate)) / (
        2.0 * boot.size
    )
    z0 = stats.norm.ppf(share)
    num = den = 0.0
    for values in jackknife:
        k = float(values.size)
        u = (k - 1.0) * (values.mean() - values)
        num += np.sum(u**3) / k**3
        den += np.sum(u**2) / k**2
    accel = num / (6.0 * den**1.5) if den > 0 and np.isfinite(den) else 0.0
    z = stats.norm.ppf(np.array([alpha / 2, 1 - alpha / 2]))
    levels = stats.norm.cdf(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
    if not np.all(np.isfinite(levels)):
        raise ValueError(
            "the BCa interval is undefined here (every bootstrap AUC lies on one side of "
            "the AUC); use bootstrap_ci='percentile'"
        )
    return levels


class YoudenThreshold(NamedTuple):
    """Result of :func:`youden_threshold`.

    Attributes
    ----------
    threshold : float
        Predict positive when ``score >= threshold``.
    sensitivity, specificity : float
        At that threshold.
    youden_index : float
        ``sensitivity + specificity - 1``.

    Examples
    --------
    >>> from thyronet.metrics import youden_threshold
    >>> threshold, sensitivity, specificity, j = youden_threshold([0, 1, 0, 1], [1, 2, 3, 4])
    >>> threshold, sensitivity, specificity
    (4.0, 0.5, 1.0)
    """

    threshold: float
    sensitivity: float
    specificity: float
    youden_index: float


def youden_threshold(y_true, y_score) -> YoudenThreshold:
    """The score threshold that maximises Youden's J = sensitivity + specificity - 1.

    Candidate thresholds are the distinct observed scores (scikit-learn's
    ``roc_curve``); a subject is predicted positive when ``score >= threshold``.
    When several thresholds reach the same J, the highest one is returned.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 labels, 1 = positive class.
    y_score : array-like of shape (n_subjects,)
        Scores; higher = more likely positive.

    Returns
    -------
    YoudenThreshold

    Examples
    --------
    >>> from thyronet.metrics import youden_threshold
    >>> youden_threshold([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.3]).threshold
    0.3
    """
    labels = check_labels(y_true)
    score = check_scores(y_score, "y_score", n=labels.size)
    fpr, tpr, thresholds = roc_curve(labels, score, drop_intermediate=False)
    m = int(labels.sum())
    n = labels.size - m
    # J * m * n in exact integers, so that equal J compare equal and the highest
    # threshold wins; the first point is the "predict nobody" threshold (+inf)
    j = np.rint(tpr * m).astype(np.int64) * n - np.rint(fpr * n).astype(np.int64) * m
    best = int(np.argmax(j[1:])) + 1
    return YoudenThreshold(
        float(thresholds[best]),
        float(tpr[best]),
        float(1.0 - fpr[best]),
        float(tpr[best] - fpr[best]),
    )

"""Threshold metrics (accuracy, sensitivity, ...) with Wilson confidence intervals."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from thyronet.metrics._validation import check_confidence, check_labels, check_scores

__all__ = ["BinarySummary", "Proportion", "binary_summary", "wilson_interval"]


@dataclass(frozen=True)
class Proportion:
    """A proportion with its confidence interval; unpacks as ``estimate, low, high``.

    Attributes
    ----------
    estimate, low, high : float
        The value and its confidence limits (NaN when ``total`` is 0).
    count, total : int
        Successes and trials of the binomial proportion behind the interval.

    Examples
    --------
    >>> from thyronet.metrics import wilson_interval
    >>> estimate, low, high = wilson_interval(3, 4)
    >>> estimate, round(low, 3), round(high, 3)
    (0.75, 0.301, 0.954)
    """

    estimate: float
    low: float
    high: float
    count: int
    total: int

    def __iter__(self):
        return iter((self.estimate, self.low, self.high))

    def __str__(self) -> str:
        return f"{self.estimate:.3f} ({self.low:.3f}-{self.high:.3f})"


def wilson_interval(count: int, total: int, confidence: float = 0.95) -> Proportion:
    """``count / total`` with its Wilson score interval (statsmodels ``proportion_confint``).

    Parameters
    ----------
    count, total : int
        Successes and trials; ``total = 0`` gives NaN.
    confidence : float, default=0.95
        Level of the interval.

    Returns
    -------
    Proportion

    Examples
    --------
    >>> from thyronet.metrics import wilson_interval
    >>> p = wilson_interval(8, 10)
    >>> round(p.low, 4), round(p.high, 4)
    (0.4902, 0.9433)
    """
    confidence = check_confidence(confidence)
    count, total = int(count), int(total)
    if total == 0:
        return Proportion(float("nan"), float("nan"), float("nan"), count, total)
    low, high = proportion_confint(count, total, alpha=1.0 - confidence, method="wilson")
    return Proportion(count / total, float(low), float(high), count, total)


@dataclass(frozen=True)
class BinarySummary:
    """Result of :func:`binary_summary`.

    Attributes
    ----------
    threshold : float
        Subjects with ``score >= threshold`` are predicted positive.
    tp, fp, tn, fn : int
        Confusion-matrix counts.
    accuracy, sensitivity, specificity, ppv, npv, f1 : Proportion
        Each with its Wilson interval. The F1 interval is the Wilson interval
        of ``TP / (TP + FP + FN)`` mapped through ``2 J / (1 + J)`` (F1 is an
        increasing function of that proportion).
    confidence : float
        Level of the intervals.

    Examples
    --------
    >>> from thyronet.metrics import binary_summary
    >>> summary = binary_summary([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.6])
    >>> summary.to_frame().loc["sensitivity", "estimate"], summary.sensitivity.total
    (np.float64(0.5), 2)
    """

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: Proportion
    sensitivity: Proportion
    specificity: Proportion
    ppv: Proportion
    npv: Proportion
    f1: Proportion
    confidence: float = 0.95

    METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")

    def to_frame(self) -> pd.DataFrame:
        """One row per metric: ``estimate, low, high, count, total``."""
        rows = {
            name: [getattr(getattr(self, name), f.name) for f in fields(Proportion)]
            for name in self.METRICS
        }
        return pd.DataFrame.from_dict(
            rows, orient="index", columns=[f.name for f in fields(Proportion)]
        )


def _check_threshold(threshold) -> float:
    try:
        value = float(threshold) if np.ndim(threshold) == 0 else float("nan")
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(threshold, bool) or not np.isfinite(value):
        raise ValueError(f"threshold must be one finite number; got {threshold!r}")
    return value


def binary_summary(
    y_true, y_score, threshold: float = 0.5, *, confidence: float = 0.95
) -> BinarySummary:
    """Accuracy, sensitivity, specificity, PPV, NPV and F1 at a threshold, with Wilson CIs.

    A subject is predicted positive when ``y_score >= threshold`` (higher score
    = positive class). Scores need not be probabilities. A metric whose
    denominator is empty (e.g. PPV when nobody is predicted positive) is NaN.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 labels, 1 = positive class.
    y_score : array-like of shape (n_subjects,)
        Predicted probabilities or scores.
    threshold : float, default=0.5
        Decision threshold, e.g. from :func:`youden_threshold`.
    confidence : float, default=0.95
        Level of the Wilson intervals.

    Returns
    -------
    BinarySummary

    Examples
    --------
    >>> from thyronet.metrics import binary_summary
    >>> s = binary_summary([0, 0, 1, 1, 0, 1], [0.1, 0.6, 0.35, 0.8, 0.2, 0.7])
    >>> s.tp, s.fp, round(s.sensitivity.estimate, 3), round(s.specificity.estimate, 3)
    (2, 1, 0.667, 0.667)
    """
    confidence = check_confidence(confidence)
    labels = check_labels(y_true, both_classes=False)
    score = check_scores(y_score, "y_score", n=labels.size)
    threshold = _check_threshold(threshold)
    predicted = score >= threshold
    tp = int(np.sum(predicted & labels))
    fp = int(np.sum(predicted & ~labels))
    tn = int(np.sum(~predicted & ~labels))
    fn = int(np.sum(~predicted & labels))

    def w(count, total):
        return wilson_interval(count, total, confidence)

    jaccard = w(tp, tp + fp + fn)
    f1 = Proportion(
        *(2 * v / (1 + v) for v in (jaccard.estimate, jaccard.low, jaccard.high)),
        count=tp,
        total=tp + fp + fn,
    )
    return BinarySummary(
        threshold=threshold,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        accuracy=w(tp + tn, labels.size),
        sensitivity=w(tp, tp + fn),
        specificity=w(tn, tn + fp),
        ppv=w(tp, tp + fp),
        npv=w(tn, tn + fn),
        f1=f1,
        confidence=confidence,
    )

"""Decision curves (Vickers & Elkin, 2006), their bootstrap bands and interventions avoided."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from thyronet.metrics._validation import (
    check_confidence,
    check_labels,
    check_positive_int,
    check_scores,
)

__all__ = ["decision_curve"]


def _treated(sorted_scores: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """How many of ``sorted_scores`` are ``>= pt``, for each threshold."""
    return sorted_scores.size - np.searchsorted(sorted_scores, pts, side="left")


def _band(pos, neg, pts, odds, n_bootstrap, confidence, random_state):
    """Percentile band of the model's net benefit over stratified bootstrap samples."""
    rng = check_random_state(random_state)
    n = pos.size + neg.size
    curves = np.empty((n_bootstrap, pts.size))
    for b in range(n_bootstrap):
        p = np.sort(pos[rng.randint(pos.size, size=pos.size)])
        q = np.sort(neg[rng.randint(neg.size, size=neg.size)])
        curves[b] = _treated(p, pts) / n - _treated(q, pts) / n * odds
    alpha = (1.0 - confidence) / 2.0
    return np.quantile(curves, [alpha, 1.0 - alpha], axis=0)


def decision_curve(
    y_true,
    y_prob,
    thresholds=None,
    *,
    n_bootstrap: int = 0,
    ci: float = 0.95,
    random_state=None,
) -> pd.DataFrame:
    """Net benefit of the model, of treating everyone and of treating no one.

    At threshold probability ``pt`` a subject is treated when
    ``y_prob >= pt``, and

    - model: ``NB = TP / n - FP / n * pt / (1 - pt)``,
    - treat all: ``NB = prevalence - (1 - prevalence) * pt / (1 - pt)``,
    - treat none: ``NB = 0``;
    - interventions avoided per 100 patients, compared with treating all:
      ``(NB - NB_all) * 100 / (pt / (1 - pt))`` (NaN at ``pt = 0``).

    These are the formulas of the ``dcurves`` package (Python port of Vickers'
    ``dca``), whose ``net_benefit`` and ``net_intervention_avoided`` (per
    patient) they reproduce.

    With ``n_bootstrap > 0``, a percentile band of the model's net benefit:
    ``n_bootstrap`` stratified bootstrap samples (positives and negatives
    resampled separately, so the prevalence and the treat-all curve stay
    fixed, as pROC's stratified bootstrap does), the ``(1 - ci) / 2`` and
    ``(1 + ci) / 2`` quantiles at each threshold. The band shows the sampling
    uncertainty of the curve for this (fixed) model; it does not include the
    uncertainty of fitting the model.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 outcomes, 1 = positive.
    y_prob : array-like of shape (n_subjects,)
        Predicted probabilities of the positive class, in [0, 1].
    thresholds : array-like of float in [0, 1), optional
        Threshold probabilities; default ``0.01, 0.02, ..., 0.99``.
    n_bootstrap : int, default=0
        Bootstrap samples of the band; 0 = no band.
    ci : float, default=0.95
        Coverage of the band.
    random_state : int, RandomState or None
        Seed of the bootstrap.

    Returns
    -------
    DataFrame
        One row per threshold: ``threshold, net_benefit, net_benefit_all,
        net_benefit_none, true_positives, false_positives,
        interventions_avoided``, and with a band ``net_benefit_low,
        net_benefit_high``.

    Examples
    --------
    >>> from thyronet.metrics import decision_curve
    >>> dc = decision_curve([1, 0, 1, 0], [0.9, 0.6, 0.4, 0.1], [0.5])
    >>> float(dc.net_benefit.iloc[0]), float(dc.net_benefit_all.iloc[0])
    (0.0, 0.0)
    >>> float(dc.interventions_avoided.iloc[0])  # per 100 patients
    0.0
    >>> band = decision_curve([1, 0, 1, 0, 1, 0], [.9, .6, .4, .1, .8, .3], [0.5],
    ...                       n_bootstrap=200, random_state=0)
    >>> bool(band.net_benefit_low.iloc[0] <= band.net_benefit.iloc[0]
    ...      <= band.net_benefit_high.iloc[0])
    True
    """
    labels = check_labels(y_true, both_classes=False)
    prob = check_scores(y_prob, "y_prob", n=labels.size, probability=True)
    if thresholds is None:
        pts = np.round(np.arange(1, 100) / 100.0, 2)
    else:
        pts = check_scores(np.atleast_1d(np.asarray(thresholds)), "thresholds")
        bad = (pts < 0) | (pts >= 1)
        if bad.any():
            raise ValueError(
                f"thresholds must lie in [0, 1) (the odds pt / (1 - pt) is "
                f"infinite at 1); got {pts[bad][:3].tolist()}"
            )
    n_bootstrap = check_positive_int(n_bootstrap, "n_bootstrap", minimum=0)
    confidence = check_confidence(ci)
    n = labels.size
    prevalence = labels.mean()
    odds = pts / (1.0 - pts)
    pos, neg = np.sort(prob[labels]), np.sort(prob[~labels])
    tp = _treated(pos, pts)  # positives with prob >= pt
    fp = _treated(neg, pts)
    net_benefit = tp / n - fp / n * odds
    net_benefit_all = prevalence - (1.0 - prevalence) * odds
    with np.errstate(divide="ignore", invalid="ignore"):
        avoided = np.where(odds > 0, (net_benefit - net_benefit_all) * 100.0 / odds, np.nan)
    curve = pd.DataFrame(
        {
            "threshold": pts,
            "net_benefit": net_benefit,
            "net_benefit_all": net_benefit_all,
            "net_benefit_none": np.zeros(pts.size),
            "true_positives": tp,
            "false_positives": fp,
            "interventions_avoided": avoided,
        }
    )
    if n_bootstrap:
        if pos.size == 0 or neg.size == 0:
            raise ValueError(
                "a bootstrap band of the net benefit needs positive and negative subjects; "
                f"y_true has {pos.size} positive and {neg.size} negative"
            )
        low, high = _band(pos, neg, pts, odds, n_bootstrap, confidence, random_state)
        curve["net_benefit_low"] = low
        curve["net_benefit_high"] = high
    return curve

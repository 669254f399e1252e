"""Decision-curve analysis (Vickers & Elkin, 2006)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thyronet.metrics._validation import check_labels, check_scores

__all__ = ["decision_curve"]


def decision_curve(y_true, y_prob, thresholds=None) -> pd.DataFrame:
    """Net benefit of the model, of treating everyone and of treating no one.

    At threshold probability ``pt`` a subject is treated when
    ``y_prob >= pt``, and

    - model: ``NB = TP / n - FP / n * pt / (1 - pt)``,
    - treat all: ``NB = prevalence - (1 - prevalence) * pt / (1 - pt)``,
    - treat none: ``NB = 0``.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 outcomes, 1 = positive.
    y_prob : array-like of shape (n_subjects,)
        Predicted probabilities of the positive class, in [0, 1].
    thresholds : array-like of float in [0, 1), optional
        Threshold probabilities; default ``0.01, 0.02, ..., 0.99``.

    Returns
    -------
    DataFrame
        One row per threshold: ``threshold, net_benefit, net_benefit_all,
        net_benefit_none, true_positives, false_positives``.

    Examples
    --------
    >>> from thyronet.metrics import decision_curve
    >>> dc = decision_curve([1, 0, 1, 0], [0.9, 0.6, 0.4, 0.1], [0.5])
    >>> float(dc.net_benefit.iloc[0]), float(dc.net_benefit_all.iloc[0])
    (0.0, 0.0)
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
    n = labels.size
    prevalence = labels.mean()
    odds = pts / (1.0 - pts)
    pos, neg = np.sort(prob[labels]), np.sort(prob[~labels])
    tp = pos.size - np.searchsorted(pos, pts, side="left")  # positives with prob >= pt
    fp = neg.size - np.searchsorted(neg, pts, side="left")
    return pd.DataFrame(
        {
            "threshold": pts,
            "net_benefit": tp / n - fp / n * odds,
            "net_benefit_all": prevalence - (1.0 - prevalence) * odds,
            "net_benefit_none": np.zeros(pts.size),
            "true_positives": tp,
            "false_positives": fp,
        }
    )

"""Calibration: the Hosmer-Lemeshow test, calibration curve, intercept, slope and Brier score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from thyronet.metrics._validation import check_labels, check_positive_int, check_scores

__all__ = [
    "Calibration",
    "CalibrationLine",
    "HosmerLemeshow",
    "calibration",
    "calibration_intercept_slope",
    "hosmer_lemeshow",
]


@dataclass(frozen=True, eq=False)
class HosmerLemeshow:
    """Result of :func:`hosmer_lemeshow`.

    Attributes
    ----------
    statistic : float
        Pearson chi-square over groups and both outcomes,
        ``sum_g (O1 - E1)^2 / E1 + (O0 - E0)^2 / E0``.
    df : int
        Degrees of freedom: groups used - 2 (development sample) or groups
        used (external sample).
    p_value : float
        Upper tail of the chi-square distribution with ``df`` degrees of freedom.
    n_groups : int
        Number of non-empty groups actually used.
    table : DataFrame
        Per group: ``n``, ``observed`` and ``expected`` positives, and
        ``mean_predicted`` probability, ``min_predicted``, ``max_predicted``.

    Examples
    --------
    >>> from thyronet.metrics import hosmer_lemeshow
    >>> statistic, df, p_value = hosmer_lemeshow([0, 0, 1, 0, 1, 1], [.1, .2, .3, .6, .7, .8],
    ...                                          n_groups=3, sample="external")
    >>> round(statistic, 4), df
    (1.0398, 3)
    """

    statistic: float
    df: int
    p_value: float
    n_groups: int
    table: pd.DataFrame

    def __iter__(self):
        return iter((self.statistic, self.df, self.p_value))


def _risk_groups(prob: np.ndarray, n_groups: int) -> np.ndarray:
    """Group index (0-based, increasing risk) of each subject.

    Subjects are sorted by predicted probability and cut into ``n_groups``
    consecutive blocks of equal size (the first ``n % n_groups`` blocks one
    larger), exactly as ``numpy.array_split`` and statsmodels'
    ``test_chisquare_binning`` do. Subjects with tied probabilities are then
    kept together: a run of ties that straddles a cut joins the group of its
    lowest-ranked member. A group left empty by that is dropped.
    """
    n = prob.size
    order = np.argsort(prob, kind="stable")
    sizes = np.full(n_groups, n // n_groups)
    sizes[: n % n_groups] += 1
    block = np.repeat(np.arange(n_groups), sizes)
    ordered = prob[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    run_start = np.repeat(starts, np.diff(np.append(starts, n)))
    groups = np.empty(n, dtype=int)
    groups[order] = block[run_start]
    return groups


def hosmer_lemeshow(
    y_true,
    y_prob,
    n_groups: int = 10,
    *,
    sample: Literal["development", "external"] = "development",
) -> HosmerLemeshow:
    """Hosmer-Lemeshow goodness-of-fit test over groups of predicted risk.

    Subjects are sorted by predicted probability and split into ``n_groups``
    groups of (nearly) equal size, as statsmodels' ``test_chisquare_binning``
    does; with no ties in ``y_prob`` both give the same groups and statistic.
    Tied probabilities are never split across groups: a run of ties that
    straddles a cut joins the lower group, and a group left empty is dropped
    (so ``n_groups`` of the result can be smaller than asked).

    Degrees of freedom ("df rule"): ``g - 2`` in the development (training)
    sample, where the model was fitted (Hosmer & Lemeshow); ``g`` for an
    external sample the model never saw (``sample="external"``; Hosmer,
    Lemeshow & Sturdivant 2013, sec. 5.2.2, and Stata's ``estat gof`` out of
    sample). ``g`` is the number of non-empty groups used.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 outcomes, 1 = positive.
    y_prob : array-like of shape (n_subjects,)
        Predicted probabilities of the positive class, in [0, 1].
    n_groups : int, default=10
        Number of risk groups (deciles of risk by default).
    sample : {"development", "external"}, default="development"
        Which df rule to apply.

    Returns
    -------
    HosmerLemeshow
        Unpacks as ``statistic, df, p_value``.

    Raises
    ------
    ValueError
        When there are fewer subjects than groups, probabilities lie outside
        [0, 1], the df would be below 1, or a group's mean predicted
        probability is exactly 0 or 1 (its chi-square term is undefined).

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.metrics import hosmer_lemeshow
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, 500)
    >>> y = rng.uniform(size=500) < p
    >>> hl = hosmer_lemeshow(y, p)
    >>> hl.df, bool(hl.p_value > 0.01)
    (8, True)
    """
    if sample not in ("development", "external"):
        raise ValueError(f"sample must be 'development' or 'external'; got {sample!r}")
    n_groups = check_positive_int(n_groups, "n_groups", 1)
    labels = check_labels(y_true, both_classes=False)
    prob = check_scores(y_prob, "y_prob", n=labels.size, probability=True)
    if labels.size < n_groups:
        raise ValueError(
            f"hosmer_lemeshow needs at least as many subjects as groups; got "
            f"{labels.size} subjects for n_groups={n_groups}"
        )
    groups = _risk_groups(prob, n_groups)
    used = np.unique(groups)
    index = np.searchsorted(used, groups)
    g = used.size
    size = np.bincount(index, minlength=g).astype(float)
    observed = np.bincount(index, weights=labels.astype(float), minlength=g)
    expected = np.bincount(index, weights=prob, minlength=g)
    df = g - 2 if sample == "development" else g
    if df < 1:
        raise ValueError(
            f"the Hosmer-Lemeshow test has {df} degrees of freedom with {g} "
            f"non-empty group(s) in a {sample} sample; use more groups"
            + (" (ties in y_prob merged some)" if g < n_groups else "")
        )
    mean = expected / size
    degenerate = (mean <= 0) | (mean >= 1)
    if degenerate.any():
        k = int(np.flatnonzero(degenerate)[0])
        raise ValueError(
            f"risk group {k + 1} has mean predicted probability {mean[k]:g}: "
            "its Hosmer-Lemeshow term divides by zero; the statistic is undefined "
            "for predictions of exactly 0 or 1 (use fewer groups)"
        )
    statistic = float(
        np.sum(
            (observed - expected) ** 2 / expected
            + ((size - observed) - (size - expected)) ** 2 / (size - expected)
        )
    )
    table = pd.DataFrame(
        {
            "group": np.arange(1, g + 1),
            "n": size.astype(int),
            "observed": observed.astype(int),
            "expected": expected,
            "mean_predicted": mean,
            "min_predicted": pd.Series(prob).groupby(index).min().to_numpy(),
            "max_predicted": pd.Series(prob).groupby(index).max().to_numpy(),
        }
    )
    return HosmerLemeshow(statistic, int(df), float(stats.chi2.sf(statistic, df)), int(g), table)


class CalibrationLine(NamedTuple):
    """Result of :func:`calibration_intercept_slope`.

    Attributes
    ----------
    intercept : float
        Calibration-in-the-large: ``a`` in ``logit P(y=1) = a + logit(p)``
        (0 when the mean risk is right; > 0 means predictions are too low).
    slope : float
        ``b`` in ``logit P(y=1) = a' + b logit(p)`` (1 is ideal; < 1 means
        predictions are too extreme, as with overfitting).

    Examples
    --------
    >>> from thyronet.metrics import CalibrationLine
    >>> CalibrationLine(intercept=0.1, slope=0.8).slope
    0.8
    """

    intercept: float
    slope: float


def calibration_intercept_slope(y_true, y_prob) -> CalibrationLine:
    """Calibration intercept and slope by logistic recalibration (statsmodels GLM).

    The intercept is fitted with ``logit(p)`` as an offset (slope fixed at 1),
    the slope in a second logistic regression on ``logit(p)`` (Van Calster et
    al., 2016; Steyerberg, *Clinical Prediction Models*).

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 outcomes, 1 = positive.
    y_prob : array-like of shape (n_subjects,)
        Predicted probabilities, strictly inside (0, 1) (their logit is used).

    Returns
    -------
    CalibrationLine

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.metrics import calibration_intercept_slope
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, 2000)
    >>> y = rng.uniform(size=2000) < p
    >>> line = calibration_intercept_slope(y, p)
    >>> bool(abs(line.intercept) < 0.2), bool(abs(line.slope - 1) < 0.2)
    (True, True)
    """
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_linear_model import GLM

    labels = check_labels(y_true)
    prob = check_scores(y_prob, "y_prob", n=labels.size, probability=True)
    edge = (prob <= 0) | (prob >= 1)
    if edge.any():
        k = np.flatnonzero(edge)
        raise ValueError(
            f"calibration intercept and slope need probabilities strictly inside "
            f"(0, 1) (their logit is used); y_prob is {prob[k[0]]:g} at "
            f"position(s) {', '.join(map(str, k[:5]))}"
        )
    logit = np.log(prob) - np.log1p(-prob)
    y = labels.astype(float)
    intercept = GLM(y, np.ones((y.size, 1)), family=Binomial(), offset=logit).fit()
    slope = GLM(y, np.column_stack([np.ones(y.size), logit]), family=Binomial()).fit()
    return CalibrationLine(float(intercept.params[0]), float(slope.params[1]))


@dataclass(frozen=True, eq=False)
class Calibration:
    """Result of :func:`calibration`.

    Attributes
    ----------
    prob_true, prob_pred : ndarray
        Calibration curve points (observed fraction of positives and mean
        predicted probability per non-empty bin), from scikit-learn's
        ``calibration_curve``.
    intercept, slope : float
        See :class:`CalibrationLine`.
    brier : float
        Brier score (mean squared error of the probabilities).
    hosmer_lemeshow : HosmerLemeshow
        The Hosmer-Lemeshow test of the same predictions.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.metrics import calibration
    >>> p = np.linspace(0.05, 0.95, 40)
    >>> y = np.arange(40) % 2
    >>> cal = calibration(y, p, n_bins=4)
    >>> len(cal.prob_true), bool(cal.brier == np.mean((p - y) ** 2))
    (4, True)
    """

    prob_true: np.ndarray
    prob_pred: np.ndarray
    intercept: float
    slope: float
    brier: float
    hosmer_lemeshow: HosmerLemeshow


def calibration(
    y_true,
    y_prob,
    *,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
    n_groups: int = 10,
    sample: Literal["development", "external"] = "development",
) -> Calibration:
    """Calibration curve, intercept, slope, Brier score and Hosmer-Lemeshow test.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 outcomes, 1 = positive.
    y_prob : array-like of shape (n_subjects,)
        Predicted probabilities of the positive class, strictly inside (0, 1).
    n_bins : int, default=10
        Bins of the curve (scikit-learn ``calibration_curve``).
    strategy : {"uniform", "quantile"}, default="uniform"
        Bin edges of the curve: equal width or equal count.
    n_groups : int, default=10
        Groups of :func:`hosmer_lemeshow`.
    sample : {"development", "external"}, default="development"
        df rule of :func:`hosmer_lemeshow`.

    Returns
    -------
    Calibration

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.metrics import calibration
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, 1000)
    >>> y = rng.uniform(size=1000) < p
    >>> cal = calibration(y, p, n_bins=5)
    >>> cal.prob_pred.shape, bool(cal.brier < 0.25)
    ((5,), True)
    """
    labels = check_labels(y_true)
    prob = check_scores(y_prob, "y_prob", n=labels.size, probability=True)
    n_bins = check_positive_int(n_bins, "n_bins", 1)
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"strategy must be 'uniform' or 'quantile'; got {strategy!r}")
    prob_true, prob_pred = calibration_curve(labels, prob, n_bins=n_bins, strategy=strategy)
    line = calibration_intercept_slope(labels, prob)
    return Calibration(
        prob_true=prob_true,
        prob_pred=prob_pred,
        intercept=line.intercept,
        slope=line.slope,
        brier=float(brier_score_loss(labels, prob)),
        hosmer_lemeshow=hosmer_lemeshow(labels, prob, n_groups, sample=sample),
    )

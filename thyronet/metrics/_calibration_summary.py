"""Validation indexes of predicted probabilities, as R's ``rms::val.prob`` computes them.

One function, :func:`calibration_summary`, returns discrimination (C index),
overall performance (Nagelkerke R², Brier score), the logistic recalibration
line with Wald intervals, calibration-in-the-large, the lowess-based
calibration errors (Emax, E50, E90, Eavg = ICI) and Spiegelhalter's z, plus
val.prob's unreliability (U), discrimination (D) and quality (Q) indexes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from thyronet.metrics._delong import _auc
from thyronet.metrics._lowess import lowess
from thyronet.metrics._validation import check_confidence, check_labels, check_scores

__all__ = ["CalibrationSummary", "calibration_summary"]

_MAX_ITER = 100
_TOL = 1e-12


@dataclass(frozen=True)
class CalibrationSummary:
    """Result of :func:`calibration_summary` (the statistics of ``rms::val.prob``).

    Attributes
    ----------
    n, n_events : int
        Subjects and positive outcomes.
    c_index : float
        Concordance as val.prob reports it: ``rms::lrm.fit`` counts
        concordant pairs over probabilities grouped in 5000 bins of width
        0.0002, so two probabilities in one bin count as a tie. It differs
        from ``auc`` only through pairs that close (at most about 1e-3 on the
        reference cases).
    dxy : float
        Somers' Dxy rank correlation, ``2 * (c_index - 0.5)``.
    auc : float
        The exact AUC (Mann-Whitney, ties count 1/2), as :func:`roc_auc_ci`.
    r2 : float
        Nagelkerke R² of the probabilities *as given* (not recalibrated), as
        val.prob computes it; negative when they fit worse than the overall
        event rate.
    brier : float
        Mean of ``(p - y)^2``.
    scaled_brier : float
        ``1 - brier / (ybar * (1 - ybar))``; 1 is perfect, 0 no better than
        predicting the event rate for everyone.
    intercept, slope : float
        Logistic recalibration ``logit P(y=1) = a + b * logit(p)``, fitted jointly
        (val.prob's ``Intercept`` and ``Slope``). Ideal: 0 and 1.
    intercept_ci, slope_ci : tuple of float
        Wald intervals from that fit's covariance (inverse information).
    calibration_in_the_large : float
        ``a`` of ``logit P(y=1) = a + offset(logit(p))`` (slope fixed at 1); 0 is ideal,
        positive means the model under-predicts on average.
    calibration_in_the_large_ci : tuple of float
        Wald interval of it.
    emax, e50, e90, eavg : float
        Maximum, median, 90th percentile and mean of ``|p - s(p)|``, where ``s``
        is R's ``lowess(p, y, iter = 0)`` smooth; ``eavg`` is the integrated
        calibration index (ICI).
    spiegelhalter_z, spiegelhalter_p : float
        Spiegelhalter's z test of calibration and its two-sided P value.
    d, u, q : float
        val.prob's discrimination index ``(LR - 1) / n``, unreliability index
        ``(U chi-square - 2) / n`` and quality index ``d - u``.
    u_p : float
        P value of the unreliability chi-square (2 df): are ``a = 0, b = 1``?
    confidence : float
        Level of the intervals.

    Examples
    --------
    >>> from thyronet.metrics import calibration_summary
    >>> s = calibration_summary([0, 0, 1, 0, 1, 1, 0, 1], [.1, .3, .4, .2, .8, .6, .5, .7])
    >>> round(s.c_index, 4), round(s.brier, 4)
    (0.9375, 0.13)
    """

    n: int
    n_events: int
    c_index: float
    dxy: float
    auc: float
    r2: float
    brier: float
    scaled_brier: float
    intercept: float
    intercept_ci: tuple[float, float]
    slope: float
    slope_ci: tuple[float, float]
    calibration_in_the_large: float
    calibration_in_the_large_ci: tuple[float, float]
    emax: float
    e50: float
    e90: float
    eavg: float
    spiegelhalter_z: float
    spiegelhalter_p: float
    d: float
    u: float
    u_p: float
    q: float
    confidence: float = 0.95


def _logistic_fit(
    design: np.ndarray, y: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Maximum-likelihood logistic regression by Newton-Raphson with step halving.

    Returns ``(coefficients, covariance, deviance)``; the covariance is the
    inverse of the observed information at the estimate.
    """

    def deviance(beta: np.ndarray) -> float:
        eta = design @ beta + offset
        return float(-2.0 * np.sum(y * eta - np.logaddexp(0.0, eta)))

    beta = np.zeros(design.shape[1])
    current = deviance(beta)
    converged = False
    for _ in range(_MAX_ITER):
        mu = 1.0 / (1.0 + np.exp(-(design @ beta + offset)))
        info = design.T @ (design * (mu * (1.0 - mu))[:, None])
        step = np.linalg.solve(info, design.T @ (y - mu))
        for _ in range(30):
            candidate = deviance(beta + step)
            if candidate <= current + 1e-12 * abs(current):
                break
            step = step / 2.0
        beta, current = beta + step, candidate
        if np.max(np.abs(step)) < _TOL * (1.0 + np.max(np.abs(beta))):
            converged = True
            break
    if not converged:
        warnings.warn(
            "the logistic recalibration fit did not converge (the outcome may be "
            "perfectly separated by the predictions); intercept and slope are unreliable",
            RuntimeWarning,
            stacklevel=3,
        )
    mu = 1.0 / (1.0 + np.exp(-(design @ beta + offset)))
    info = design.T @ (design * (mu * (1.0 - mu))[:, None])
    return beta, np.linalg.inv(info), current


def _wald(estimate: float, variance: float, z: float) -> tuple[float, float]:
    half = z * np.sqrt(variance)
    return float(estimate - half), float(estimate + half)


def _binned_concordance(labels: np.ndarray, logit: np.ndarray) -> float:
    """C index of rms 6.5's ``lrm.fit``: probabilities binned as ``int(5000 * p + 1)``."""
    prob = 1.0 / (1.0 + np.exp(-np.clip(logit, -30.0, 30.0)))
    return _auc(labels, np.floor(5000.0 * prob + 1.0))


def _smooth_errors(prob: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``|p - s(p)|`` with ``s`` = ``approx(lowess(p, y, iter = 0), xout = p, ties = mean)``."""
    xs, fitted = lowess(prob, y, iter=0)
    unique, inverse = np.unique(xs, return_inverse=True)
    smooth = np.bincount(inverse, fitted) / np.bincount(inverse)
    return np.abs(prob - np.interp(prob, unique, smooth))


def calibration_summary(y_true, y_prob, *, ci: float = 0.95) -> CalibrationSummary:
    """Validation statistics of predicted probabilities, matching R's ``rms::val.prob``.

    Every index is computed as ``val.prob(p, y)`` computes it (rms 6.5) and
    the tests check all of them against R on 30 reference datasets: 1e-9
    relative on the indexes, 1e-6 on P values and the lowess-based errors,
    1e-5 on the fitted intercept and slope (R's ``lrm.fit`` stops earlier;
    thyronet iterates to machine precision).

    - ``intercept`` and ``slope`` come from one joint logistic fit
      ``y ~ a + b * logit(p)``; this intercept is *not* calibration-in-the-large,
      reported separately from the offset fit ``y ~ offset(logit(p))``. Their
      intervals are Wald intervals (estimate +/- z * standard error from the
      inverse information), not profile-likelihood ones.
    - ``c_index`` is lrm.fit's binned concordance (see
      :class:`CalibrationSummary`); ``auc`` is the exact one.
    - ``r2``, ``d``, ``u`` and ``q`` use the likelihood of ``p`` as given, as
      val.prob does (its ``lrm.fit(..., initial = c(0, 1), maxit = 1)``).
    - ``emax``, ``e50``, ``e90`` and ``eavg`` (ICI) compare ``p`` with R's
      ``lowess(p, y, iter = 0)`` smooth (``f = 2/3``, ``delta = 0.01 * range``),
      reproduced exactly by :func:`thyronet.metrics.lowess`; ``e50`` is their
      median (R's quantile type 7, as for ``e90``).

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 outcomes, 1 = event; both must occur.
    y_prob : array-like of shape (n_subjects,)
        Predicted probabilities of the event, strictly inside (0, 1).
    ci : float, default=0.95
        Level of the Wald intervals.

    Returns
    -------
    CalibrationSummary

    Raises
    ------
    ValueError
        On different lengths, a single class, fewer than 5 subjects, or a
        probability outside the open interval (0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.metrics import calibration_summary
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, 500)
    >>> y = (rng.uniform(size=500) < p).astype(int)
    >>> s = calibration_summary(y, p)
    >>> bool(s.slope_ci[0] < 1 < s.slope_ci[1]), bool(s.eavg < 0.05)
    (True, True)
    """
    confidence = check_confidence(ci)
    labels = check_labels(y_true)
    prob = check_scores(y_prob, "y_prob", n=labels.size, probability=True)
    edge = (prob <= 0) | (prob >= 1)
    if edge.any():
        k = np.flatnonzero(edge)
        raise ValueError(
            "calibration_summary needs probabilities strictly inside (0, 1) (their "
            f"logit is used); y_prob is {prob[k[0]]:g} at position(s) "
            f"{', '.join(map(str, k[:5]))}"
        )
    n = labels.size
    if n < 5:
        raise ValueError(f"calibration_summary needs at least 5 subjects; got {n}")
    y = labels.astype(float)
    logit = np.log(prob) - np.log1p(-prob)
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))

    beta, cov, deviance_fit = _logistic_fit(np.column_stack([np.ones(n), logit]), y, np.zeros(n))
    citl, citl_cov, _ = _logistic_fit(np.ones((n, 1)), y, logit)

    events = float(y.sum())
    rate = events / n
    deviance_null = -2.0 * (events * np.log(rate) + (n - events) * np.log1p(-rate))
    deviance_p = float(-2.0 * np.sum(y * logit - np.logaddexp(0.0, logit)))
    lr = deviance_null - deviance_p
    r2 = (1.0 - np.exp(-lr / n)) / (1.0 - np.exp(-deviance_null / n))
    u_chisq = deviance_p - deviance_fit
    d_index = (lr - 1.0) / n
    u_index = (u_chisq - 2.0) / n

    brier = float(np.mean((prob - y) ** 2))
    spiegel = float(
        np.sum((y - prob) * (1.0 - 2.0 * prob))
        / np.sqrt(np.sum((1.0 - 2.0 * prob) ** 2 * prob * (1.0 - prob)))
    )
    errors = _smooth_errors(prob, y)
    c_index = _binned_concordance(labels, logit)
    return CalibrationSummary(
        n=int(n),
        n_events=int(events),
        c_index=c_index,
        dxy=2.0 * (c_index - 0.5),
        auc=_auc(labels, prob),
        r2=float(r2),
        brier=brier,
        scaled_brier=float(1.0 - brier / (rate * (1.0 - rate))),
        intercept=float(beta[0]),
        intercept_ci=_wald(beta[0], cov[0, 0], z),
        slope=float(beta[1]),
        slope_ci=_wald(beta[1], cov[1, 1], z),
        calibration_in_the_large=float(citl[0]),
        calibration_in_the_large_ci=_wald(citl[0], citl_cov[0, 0], z),
        emax=float(errors.max()),
        e50=float(np.quantile(errors, 0.5)),
        e90=float(np.quantile(errors, 0.9)),
        eavg=float(errors.mean()),
        spiegelhalter_z=spiegel,
        spiegelhalter_p=float(2.0 * stats.norm.sf(abs(spiegel))),
        d=float(d_index),
        u=float(u_index),
        u_p=float(stats.chi2.sf(u_chisq, 2)),
        q=float(d_index - u_index),
        confidence=confidence,
    )

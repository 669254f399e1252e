"""calibration_summary, reclassification and lowess beyond the R reference cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy import stats
from statsmodels.nonparametric.smoothers_lowess import lowess as sm_lowess

from thyronet.metrics import (
    CalibrationSummary,
    calibration_intercept_slope,
    calibration_summary,
    lowess,
    reclassification,
    roc_auc_ci,
)


def _cohort(n=400, seed=0, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    lp = rng.normal(0, 1.5, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-lp))).astype(int)
    p = 1 / (1 + np.exp(-(shift + scale * lp)))
    return y, p


def test_summary_is_frozen_and_consistent():
    y, p = _cohort()
    s = calibration_summary(y, p)
    assert isinstance(s, CalibrationSummary)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.slope = 2.0
    assert s.n == y.size and s.n_events == y.sum()
    assert s.auc == roc_auc_ci(y, p).auc
    assert abs(s.c_index - s.auc) < 1e-3 and s.dxy == pytest.approx(2 * s.c_index - 1)
    rate = y.mean()
    assert s.scaled_brier == pytest.approx(1 - s.brier / (rate * (1 - rate)))
    assert s.emax >= s.e90 >= s.e50 >= 0 and s.emax >= s.eavg
    assert s.q == pytest.approx(s.d - s.u)
    # the offset fit and the joint fit's slope agree with the existing statsmodels fit
    line = calibration_intercept_slope(y, p)
    assert s.calibration_in_the_large == pytest.approx(line.intercept, abs=1e-7)
    assert s.slope == pytest.approx(line.slope, abs=1e-7)


def test_wald_intervals_follow_the_fit_covariance():
    y, p = _cohort(seed=1, shift=0.5, scale=0.6)
    logit = np.log(p / (1 - p))
    fit = sm.GLM(y, sm.add_constant(logit), family=sm.families.Binomial()).fit()
    for ci in (0.9, 0.95):
        s = calibration_summary(y, p, ci=ci)
        low, high = fit.conf_int(alpha=1 - ci).T
        assert_allclose(s.intercept_ci, [low[0], high[0]], rtol=1e-6)
        assert_allclose(s.slope_ci, [low[1], high[1]], rtol=1e-6)
    # miscalibration is detected: too timid predictions (slope above 1), shifted risks
    assert s.slope_ci[0] > 1
    assert s.calibration_in_the_large_ci[1] < 0 or s.calibration_in_the_large_ci[0] > 0


def test_well_calibrated_predictions_look_calibrated():
    y, p = _cohort(n=3000, seed=2)
    s = calibration_summary(y, p)
    assert s.slope_ci[0] < 1 < s.slope_ci[1]
    assert s.intercept_ci[0] < 0 < s.intercept_ci[1]
    assert s.eavg < 0.03 and s.spiegelhalter_p > 0.01 and s.u_p > 0.01


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], "has 4 values but y_true has 5"),
        ([0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 1.0], r"strictly inside \(0, 1\)"),
        ([0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.0, 0.5], r"strictly inside \(0, 1\)"),
        ([0, 1, 0, 1, 1], [0.1, 0.2, 1.3, 0.4, 0.5], r"probabilities in \[0, 1\]"),
        ([1, 1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.5], "single class"),
        ([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], "at least 5 subjects"),
        ([0, 1, 0, 1, 2], [0.1, 0.2, 0.3, 0.4, 0.5], "0/1 labels"),
    ],
)
def test_calibration_summary_bad_input(y, p, match):
    with pytest.raises(ValueError, match=match):
        calibration_summary(y, p)


def test_calibration_summary_bad_level():
    with pytest.raises(ValueError, match="confidence"):
        calibration_summary([0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.5], ci=95)


def test_lowess_matches_statsmodels_closely_and_handles_ties():
    rng = np.random.default_rng(5)
    x = np.round(rng.uniform(0, 1, 300), 2)
    y = (rng.uniform(size=300) < x).astype(float)
    xs, fit = lowess(x, y, iter=0)
    assert np.all(np.diff(xs) >= 0)
    ref = sm_lowess(y, x, frac=2 / 3, it=0, delta=0.01 * np.ptp(x))
    assert_allclose(fit, ref[:, 1], atol=1e-5)
    # tied x get one fitted value
    frame = pd.DataFrame({"x": xs, "f": fit})
    assert (frame.groupby("x")["f"].nunique() == 1).all()
    # robustness iterations pull the fit away from an outlier
    x2 = np.arange(20.0)
    y2 = x2.copy()
    y2[10] = 100.0
    _, robust = lowess(x2, y2, iter=3)
    _, plain = lowess(x2, y2, iter=0)
    assert abs(robust[10] - 10) < abs(plain[10] - 10)


def test_lowess_bad_input():
    with pytest.raises(ValueError, match="same length"):
        lowess([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        lowess([1.0, np.nan], [1.0, 2.0])


def test_reclassification_by_hand():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    old = np.array([0.2, 0.5, 0.6, 0.3, 0.2, 0.4, 0.5, 0.1, 0.3])
    new = np.array([0.4, 0.5, 0.8, 0.2, 0.1, 0.5, 0.3, 0.05, 0.3])
    r = reclassification(y, old, new)
    # events: up 2, down 1 of 4; non-events: down 3, up 1 of 5
    assert r.nri_events == pytest.approx(1 / 4)
    assert r.nri_nonevents == pytest.approx(2 / 5)
    assert r.nri == pytest.approx(1 / 4 + 2 / 5)
    d = new - old
    assert r.idi == pytest.approx(d[y == 1].mean() - d[y == 0].mean())
    assert r.idi_events - (-r.idi_nonevents) == pytest.approx(r.idi)
    assert r.nri_p == pytest.approx(2 * stats.norm.sf(abs(r.nri / r.nri_se)))
    assert r.categorical is None


def test_categorical_nri_and_tables():
    y = np.array([1, 1, 1, 0, 0, 0])
    old = np.array([0.05, 0.15, 0.5, 0.05, 0.25, 0.5])
    new = np.array([0.15, 0.35, 0.5, 0.02, 0.05, 0.5])
    cat = reclassification(y, old, new, thresholds=[0.1, 0.3]).categorical
    assert cat.categories == ["[0, 0.1)", "[0.1, 0.3)", "[0.3, 1]"]
    # events: 2 up of 3; non-events: 1 down of 3
    assert cat.nri_events == pytest.approx(2 / 3)
    assert cat.nri_nonevents == pytest.approx(1 / 3)
    assert cat.nri == pytest.approx(1.0)
    ev = cat.table_events
    assert ev.loc["[0, 0.1)", "[0.1, 0.3)"] == 1 and ev.loc["[0.1, 0.3)", "[0.3, 1]"] == 1
    assert ev.to_numpy().sum() == 3 and cat.table_nonevents.to_numpy().sum() == 3
    assert np.trace(cat.table_nonevents.to_numpy()) == 2
    assert (ev.index.name, ev.columns.name) == ("old", "new")
    # a threshold exactly at a probability puts it in the upper category
    at = reclassification(y, old, new, thresholds=[0.5]).categorical
    assert at.table_events.loc["[0.5, 1]", "[0.5, 1]"] == 1


@pytest.mark.parametrize("thresholds", [[], [0.3, 0.1], [0.0, 0.5], [0.5, 1.0], [np.nan]])
def test_bad_thresholds(thresholds):
    with pytest.raises(ValueError, match="thresholds"):
        reclassification(
            [0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.2, 0.3, 0.4, 0.5], thresholds=thresholds
        )


@pytest.mark.parametrize(
    ("y", "old", "new", "match"),
    [
        ([0, 1, 0], [0.1, 0.2, 0.3], [0.2, 0.3], "p_new has 2 values"),
        ([0, 1, 0], [0.1, 1.2, 0.3], [0.2, 0.3, 0.4], r"p_old must be probabilities in \[0, 1\]"),
        ([0, 0, 0], [0.1, 0.2, 0.3], [0.2, 0.3, 0.4], "single class"),
    ],
)
def test_reclassification_bad_input(y, old, new, match):
    with pytest.raises(ValueError, match=match):
        reclassification(y, old, new)

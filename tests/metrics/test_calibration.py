"""Hosmer-Lemeshow (against statsmodels) and calibration intercept, slope, curve, Brier."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import optimize, stats
from scipy.special import expit, logit
from sklearn.calibration import calibration_curve
from statsmodels.stats.diagnostic_gen import test_chisquare_binning as chisquare_binning

from thyronet.metrics import (
    Calibration,
    calibration,
    calibration_intercept_slope,
    hosmer_lemeshow,
)


def _calibrated(seed=0, n=500, low=0.02, high=0.98):
    rng = np.random.default_rng(seed)
    p = rng.uniform(low, high, n)
    return (rng.uniform(size=n) < p).astype(int), p


@pytest.mark.parametrize("n, groups", [(500, 10), (487, 10), (233, 7), (61, 5)])
def test_hosmer_lemeshow_agrees_with_statsmodels_on_the_same_bins(n, groups):
    y, p = _calibrated(seed=n, n=n)  # continuous p: no ties, so the bins are the same
    ours = hosmer_lemeshow(y, p, n_groups=groups)
    sm = chisquare_binning(
        np.column_stack([1 - y, y]), np.column_stack([1 - p, p]), sort_var=p, bins=groups
    )
    assert ours.df == sm.df == groups - 2
    assert_allclose(ours.statistic, sm.statistic, rtol=1e-12)
    assert_allclose(ours.p_value, sm.pvalue, rtol=1e-10)
    # the same bins: sizes and observed/expected positives
    assert ours.n_groups == groups
    assert_allclose(ours.table["n"], [idx.size for idx in sm.indices])
    assert_allclose(ours.table["observed"], sm.freqs[:, 1])
    assert_allclose(ours.table["expected"], sm.probs[:, 1], rtol=1e-12)


def test_hosmer_lemeshow_external_df_and_unpacking():
    y, p = _calibrated(seed=1)
    dev = hosmer_lemeshow(y, p)
    ext = hosmer_lemeshow(y, p, sample="external")
    statistic, df, p_value = ext
    assert (dev.df, df) == (8, 10)
    assert statistic == dev.statistic
    assert p_value == pytest.approx(stats.chi2.sf(statistic, 10), rel=1e-12)


def test_hosmer_lemeshow_keeps_ties_together_and_drops_empty_groups():
    # 10 subjects, 5 groups of 2 by rank; the tie run of 0.1 (ranks 0-5) stays in group 1,
    # the run of 0.2 (ranks 6-9) starts in group 4: groups 2, 3 and 5 are left empty.
    p = np.array([0.1] * 6 + [0.2] * 4)
    y = np.array([0, 1, 0, 0, 0, 0, 1, 0, 1, 0])
    result = hosmer_lemeshow(y, p, n_groups=5, sample="external")
    assert result.n_groups == 2 and result.df == 2
    assert_allclose(result.table["n"], [6, 4])
    assert_allclose(result.table["observed"], [1, 2])
    # by hand: group 1: O1=1, E1=0.6, O0=5, E0=5.4; group 2: O1=2, E1=0.8, O0=2, E0=3.2
    expected = 0.4**2 / 0.6 + 0.4**2 / 5.4 + 1.2**2 / 0.8 + 1.2**2 / 3.2
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="0 degrees of freedom with 2 non-empty group"):
        hosmer_lemeshow(y, p, n_groups=5)


def test_ties_never_split_across_groups():
    rng = np.random.default_rng(2)
    p = rng.integers(1, 20, 300) / 20  # heavy ties
    y = (rng.uniform(size=300) < p).astype(int)
    table = hosmer_lemeshow(y, p).table
    # group ranges do not overlap: the max of each group is below the min of the next
    assert (table["max_predicted"].to_numpy()[:-1] < table["min_predicted"].to_numpy()[1:]).all()
    assert table["n"].sum() == 300


def test_hosmer_lemeshow_flags_miscalibration():
    y, p = _calibrated(seed=3, n=2000)
    assert hosmer_lemeshow(y, p).p_value > 0.001
    assert hosmer_lemeshow(y, np.clip(p * 0.5, 0.01, 0.99)).p_value < 1e-6


def test_hosmer_lemeshow_bad_input():
    y, p = _calibrated(n=20)
    with pytest.raises(
        ValueError, match="at least as many subjects as groups; got 8 subjects for n_groups=10"
    ):
        hosmer_lemeshow(y[:8], p[:8])
    with pytest.raises(ValueError, match=r"y_prob must be probabilities in \[0, 1\]; got \[1.5\]"):
        hosmer_lemeshow(y, np.r_[p[:-1], 1.5])
    with pytest.raises(ValueError, match="y_prob contains NaN"):
        hosmer_lemeshow(y, np.r_[p[:-1], np.nan])
    with pytest.raises(ValueError, match="y_prob has 19 values but y_true has 20"):
        hosmer_lemeshow(y, p[:-1])
    with pytest.raises(ValueError, match="sample must be 'development' or 'external'"):
        hosmer_lemeshow(y, p, sample="validation")
    with pytest.raises(ValueError, match="n_groups must be an integer >= 1"):
        hosmer_lemeshow(y, p, n_groups=0)
    zeros = np.r_[np.zeros(10), np.full(10, 0.5)]
    with pytest.raises(ValueError, match="risk group 1 has mean predicted probability 0"):
        hosmer_lemeshow(y, zeros, n_groups=2, sample="external")


def test_intercept_and_slope_solve_the_recalibration_score_equations():
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 0.95, 3000)
    y = (rng.uniform(size=3000) < expit(0.4 + 0.6 * logit(p))).astype(int)
    line = calibration_intercept_slope(y, p)
    lp = logit(p)
    # intercept (offset model): sum(y) = sum(expit(a + logit p))
    a = optimize.brentq(lambda a: np.sum(y - expit(a + lp)), -5, 5, xtol=1e-14)
    assert line.intercept == pytest.approx(a, abs=1e-7)
    # slope: the maximum-likelihood equations of logit P = a' + b logit(p)
    res = optimize.root(
        lambda ab: [
            np.sum(y - expit(ab[0] + ab[1] * lp)),
            np.sum((y - expit(ab[0] + ab[1] * lp)) * lp),
        ],
        [0.0, 1.0],
        tol=1e-13,
    )
    assert line.slope == pytest.approx(res.x[1], abs=1e-7)
    assert 0.45 < line.slope < 0.75  # the generating slope was 0.6


def test_well_calibrated_predictions_have_intercept_zero_and_slope_one():
    y, p = _calibrated(seed=5, n=20000, low=0.05, high=0.95)
    intercept, slope = calibration_intercept_slope(y, p)
    assert abs(intercept) < 0.06 and abs(slope - 1) < 0.06


def test_intercept_slope_need_open_unit_interval():
    with pytest.raises(ValueError, match=r"strictly inside \(0, 1\).*is 1 at position\(s\) 3"):
        calibration_intercept_slope([0, 1, 0, 1], [0.2, 0.6, 0.3, 1.0])
    with pytest.raises(ValueError, match="single class"):
        calibration_intercept_slope([1, 1, 1, 1], [0.2, 0.6, 0.3, 0.5])


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_bundle(strategy):
    y, p = _calibrated(seed=6, n=800)
    cal = calibration(y, p, n_bins=8, strategy=strategy, sample="external")
    assert isinstance(cal, Calibration)
    true, pred = calibration_curve(y, p, n_bins=8, strategy=strategy)
    assert_allclose(cal.prob_true, true)
    assert_allclose(cal.prob_pred, pred)
    assert cal.brier == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    assert (cal.intercept, cal.slope) == tuple(calibration_intercept_slope(y, p))
    assert cal.hosmer_lemeshow.df == 10


def test_calibration_bad_input():
    y, p = _calibrated(n=50)
    with pytest.raises(ValueError, match="strategy must be 'uniform' or 'quantile'"):
        calibration(y, p, strategy="kmeans")
    with pytest.raises(ValueError, match=r"must be probabilities in \[0, 1\]"):
        calibration(y, p * 2)
    with pytest.raises(ValueError, match="single class"):
        calibration(np.zeros(50), p)

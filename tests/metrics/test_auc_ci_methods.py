"""The logit DeLong interval and the BCa bootstrap interval of :func:`roc_auc_ci`."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from thyronet.metrics import delong_variance, roc_auc_ci
from thyronet.metrics._roc import _bca_levels, _jackknife_aucs


def _data(n=200, shift=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2], y[2:4] = 0, 1
    return y, shift * y + rng.normal(0, 1, n)


def _auc_stat(pos, neg, axis=-1):
    pos = np.moveaxis(pos, axis, -1)[..., :, None]
    neg = np.moveaxis(neg, axis, -1)[..., None, :]
    return ((pos > neg) + 0.5 * (pos == neg)).mean(axis=(-2, -1))


def test_delong_logit_is_the_back_transformed_logit_interval():
    y, score = _data()
    res = roc_auc_ci(y, score, method="delong_logit", confidence=0.9)
    auc, var = res.auc, delong_variance(y, score)
    z = stats.norm.ppf(0.95)
    se_logit = np.sqrt(var) / (auc * (1 - auc))
    logit = np.log(auc / (1 - auc))
    assert_allclose(
        [res.low, res.high], stats.logistic.cdf([logit - z * se_logit, logit + z * se_logit])
    )
    assert res.method == "delong_logit" and res.variance == pytest.approx(var)
    # the same AUC as the default (pROC) interval
    assert res.auc == roc_auc_ci(y, score).auc


def test_delong_logit_stays_inside_and_is_asymmetric_near_one():
    y, score = _data(n=60, shift=3.2, seed=3)
    plain = roc_auc_ci(y, score)
    logit = roc_auc_ci(y, score, method="delong_logit")
    assert 0.97 < logit.auc < 1
    assert 0 < logit.low < logit.auc < logit.high < 1
    # longer below than above, as the AUC's sampling distribution near 1
    assert logit.high - logit.auc < logit.auc - logit.low
    # the plain interval is symmetric (up to clipping at 1)
    assert plain.high == 1.0 or np.isclose(plain.high - plain.auc, plain.auc - plain.low)
    # and for an AUC below one half the asymmetry turns around
    low_auc = roc_auc_ci(y, -score, method="delong_logit")
    assert low_auc.high - low_auc.auc > low_auc.auc - low_auc.low > 0


def test_delong_logit_of_a_perfect_score_collapses_to_the_point():
    y = np.array([0, 0, 0, 1, 1, 1])
    res = roc_auc_ci(y, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], method="delong_logit")
    assert (res.auc, res.low, res.high) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("stratified", [True, False])
def test_bca_matches_scipy_on_the_same_resamples(stratified):
    y, score = _data(n=80, shift=1.2, seed=1)
    labels = y == 1
    pos, neg = score[labels], score[~labels]
    if stratified:
        res = stats.bootstrap(
            (pos, neg), _auc_stat, method="BCa", n_resamples=999, confidence_level=0.9, rng=0
        )
    else:

        def paired(lab, s, axis=-1):
            lab, s = np.moveaxis(lab, axis, -1), np.moveaxis(s, axis, -1)
            p = np.where(lab[..., :, None] & ~lab[..., None, :], 1.0, 0.0)
            cmp = (s[..., :, None] > s[..., None, :]) + 0.5 * (s[..., :, None] == s[..., None, :])
            return (p * cmp).sum(axis=(-2, -1)) / p.sum(axis=(-2, -1))

        res = stats.bootstrap(
            (labels, score),
            paired,
            paired=True,
            method="BCa",
            n_resamples=999,
            confidence_level=0.9,
            rng=0,
        )
    boot = res.bootstrap_distribution
    assert np.isfinite(boot).all()
    auc = roc_auc_ci(y, score).auc
    levels = _bca_levels(auc, boot, _jackknife_aucs(labels, score, stratified), 0.1)
    ours = np.percentile(boot, 100 * levels)
    assert_allclose(ours, [res.confidence_interval.low, res.confidence_interval.high], rtol=1e-12)


def test_jackknife_aucs_are_leave_one_out_aucs():
    y, score = _data(n=30, seed=2)
    labels = y == 1
    (together,) = _jackknife_aucs(labels, score, stratified=False)
    for i in range(y.size):
        keep = np.arange(y.size) != i
        assert together[i] == pytest.approx(roc_auc_ci(y[keep], score[keep]).auc, rel=1e-12)


def test_bca_interval_end_to_end():
    y, score = _data(n=150, seed=4)
    pct = roc_auc_ci(y, score, method="bootstrap", n_bootstraps=1000, random_state=7)
    bca = roc_auc_ci(
        y, score, method="bootstrap", n_bootstraps=1000, random_state=7, bootstrap_ci="bca"
    )
    assert bca.method == "bootstrap_bca" and pct.method == "bootstrap"
    assert bca.auc == pct.auc and bca.n_bootstraps == pct.n_bootstraps == 1000
    assert bca.low < bca.auc < bca.high
    assert abs(bca.low - pct.low) < 0.03 and abs(bca.high - pct.high) < 0.03
    # the default is still pROC's percentile interval
    again = roc_auc_ci(y, score, method="bootstrap", n_bootstraps=1000, random_state=7)
    assert (again.low, again.high) == (pct.low, pct.high)


def test_bad_method_names_are_refused():
    y, score = _data(n=40)
    with pytest.raises(ValueError, match="method must be"):
        roc_auc_ci(y, score, method="logit")
    with pytest.raises(ValueError, match="bootstrap_ci must be"):
        roc_auc_ci(y, score, method="bootstrap", bootstrap_ci="basic")
    with pytest.raises(ValueError, match="at least 2 positive"):
        roc_auc_ci([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4], method="delong_logit")

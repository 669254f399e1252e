"""roc_auc_ci (DeLong and bootstrap) and youden_threshold."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from sklearn.metrics import roc_auc_score

from thyronet.metrics import AUCInterval, delong_variance, roc_auc_ci, youden_threshold


def _data(seed=0, n=120, noise=1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.round(y + rng.normal(0, noise, n), 1)


def test_delong_interval_by_hand_and_unpacking():
    y, s = _data()
    result = roc_auc_ci(y, s, confidence=0.9)
    assert isinstance(result, AUCInterval)
    auc, low, high = result
    half = stats.norm.ppf(0.95) * np.sqrt(delong_variance(y, s))
    assert_allclose([auc, low, high], [roc_auc_score(y, s), auc - half, auc + half], rtol=1e-12)
    assert result.variance == pytest.approx(delong_variance(y, s), rel=1e-12)
    assert result.method == "delong" and result.n_bootstraps is None
    assert str(result) == f"{auc:.3f} ({low:.3f}-{high:.3f})"


def test_delong_interval_is_clipped_to_unit_range():
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    s = np.arange(1.0, 9.0)  # one swapped pair: AUC 15/16
    auc, low, high = roc_auc_ci(y, s)
    assert auc == 15 / 16
    assert auc + stats.norm.ppf(0.975) * np.sqrt(delong_variance(y, s)) > 1
    assert high == 1.0
    auc, low, high = roc_auc_ci(y, -s)
    assert low == 0.0


def _naive_bootstrap(y, s, n_boot, stratified, seed):
    """Resample with the same draws as the implementation, AUC by sklearn."""
    rng = np.random.RandomState(seed)
    pos, neg = s[y == 1], np.sort(s[y == 0])
    pos_idx, neg_idx = np.flatnonzero(y == 1), np.flatnonzero(y == 0)[np.argsort(s[y == 0])]
    aucs = []
    if stratified:
        draws_p = rng.randint(0, pos.size, size=(n_boot, pos.size))
        draws_n = rng.randint(0, neg.size, size=(n_boot, neg.size))
        for dp, dn in zip(draws_p, draws_n, strict=True):
            yy = np.r_[np.ones(dp.size), np.zeros(dn.size)]
            aucs.append(roc_auc_score(yy, np.r_[pos[dp], neg[dn]]))
    else:
        draws = rng.randint(0, y.size, size=(n_boot, y.size))
        for d in draws:
            if 0 < y[d].sum() < d.size:
                aucs.append(roc_auc_score(y[d], s[d]))
    del pos_idx, neg_idx
    return np.array(aucs)


@pytest.mark.parametrize("stratified", [True, False])
def test_bootstrap_matches_resampling_by_hand(stratified):
    y, s = _data(seed=1, n=14, noise=0.8)  # tiny: ties, and single-class resamples unstratified
    n_boot = 300
    result = roc_auc_ci(
        y,
        s,
        method="bootstrap",
        n_bootstraps=n_boot,
        stratified=stratified,
        random_state=3,
        confidence=0.9,
    )
    aucs = _naive_bootstrap(y, s, n_boot, stratified, seed=3)
    if stratified:
        assert result.n_bootstraps == n_boot
    assert result.n_bootstraps == aucs.size
    assert_allclose([result.low, result.high], np.percentile(aucs, [5, 95]), rtol=1e-12)
    assert result.auc == roc_auc_score(y, s)


def test_bootstrap_unstratified_drops_single_class_resamples():
    y = np.array([0] * 9 + [1])
    s = np.arange(10.0)
    result = roc_auc_ci(
        y, s, method="bootstrap", n_bootstraps=400, stratified=False, random_state=0
    )
    # P(no positive drawn) = 0.9**10 = 0.35: many resamples must have been dropped
    assert 150 < result.n_bootstraps < 350
    stratified = roc_auc_ci(y, s, method="bootstrap", n_bootstraps=50, random_state=0)
    assert stratified.n_bootstraps == 50 and stratified.low == stratified.high == 1.0


def test_bootstrap_is_reproducible_and_agrees_with_delong():
    y, s = _data(seed=2, n=400)
    a = roc_auc_ci(y, s, method="bootstrap", n_bootstraps=1000, random_state=7)
    b = roc_auc_ci(y, s, method="bootstrap", n_bootstraps=1000, random_state=7)
    assert (a.low, a.high) == (b.low, b.high)
    delong = roc_auc_ci(y, s)
    assert abs(a.low - delong.low) < 0.015 and abs(a.high - delong.high) < 0.015


def test_bootstrap_handles_many_subjects_in_chunks():
    y, s = _data(seed=3, n=30_000)
    result = roc_auc_ci(y, s, method="bootstrap", n_bootstraps=200, random_state=0)
    assert result.low < result.auc < result.high
    assert result.high - result.low < 0.02


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "wald"}, "method must be 'delong', 'delong_logit' or 'bootstrap'"),
        ({"confidence": 1.0}, "confidence must be a number strictly between 0 and 1"),
        ({"method": "bootstrap", "n_bootstraps": 0}, "n_bootstraps must be an integer >= 1"),
    ],
)
def test_bad_parameters(kwargs, message):
    y, s = _data()
    with pytest.raises(ValueError, match=message):
        roc_auc_ci(y, s, **kwargs)


@pytest.mark.parametrize("method", ["delong", "bootstrap"])
def test_bad_input(method):
    with pytest.raises(ValueError, match="single class"):
        roc_auc_ci([0, 0, 0], [1, 2, 3], method=method)
    with pytest.raises(ValueError, match="y_score contains NaN"):
        roc_auc_ci([0, 1, 0], [1, np.nan, 3], method=method)
    with pytest.raises(ValueError, match="y_score contains infinite"):
        roc_auc_ci([0, 1, 0], [1, np.inf, 3], method=method)
    with pytest.raises(ValueError, match="y_score has 2 values but y_true has 3"):
        roc_auc_ci([0, 1, 0], [1, 2], method=method)


def test_youden_threshold_by_hand():
    y = [0, 0, 1, 1, 0, 1]
    s = [0.1, 0.4, 0.35, 0.8, 0.2, 0.3]
    # score >= 0.3: sensitivity 1, specificity 2/3 -> J = 2/3; >= 0.8: J = 1/3;
    # >= 0.35: 2/3 - 1/3 = 1/3; >= 0.2: 1 - 2/3 = 1/3
    result = youden_threshold(y, s)
    assert result.threshold == 0.3
    assert result.sensitivity == 1.0 and result.specificity == pytest.approx(2 / 3)
    assert result.youden_index == pytest.approx(2 / 3)


def test_youden_threshold_prefers_highest_threshold_on_exact_ties():
    y = [0, 0, 1, 1, 0, 1]
    s = [0.1, 0.4, 0.35, 0.8, 0.2, 0.7]
    # >= 0.7: sens 2/3, spec 1; >= 0.35: sens 1, spec 2/3: both J = 2/3 (floating-point
    # 2/3 - 0 and 1 - 1/3 differ in the last bit; the tie must still be exact)
    assert youden_threshold(y, s).threshold == 0.7


def test_youden_threshold_prefers_highest_threshold_on_ties():
    y = [0, 1, 0, 1]
    s = [1, 2, 3, 4]
    # thresholds 4 (J = .5), 3 (J = 0), 2 (J = .5): the highest, 4, is returned
    assert youden_threshold(y, s).threshold == 4


def test_youden_threshold_brute_force_on_random_data():
    y, s = _data(seed=5, n=200)
    result = youden_threshold(y, s)
    pos, neg = s[y == 1], s[y == 0]
    j = [np.mean(pos >= t) + np.mean(neg < t) - 1 for t in np.unique(s)]
    assert result.youden_index == pytest.approx(max(j), rel=1e-12)
    assert np.mean(pos >= result.threshold) == pytest.approx(result.sensitivity)

"""Fast DeLong (Sun & Xu) against the O(n^2) definition, and its bad-input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from sklearn.metrics import roc_auc_score

from thyronet.metrics import (
    DeLongTest,
    delong_covariance,
    delong_test,
    delong_test_unpaired,
    delong_variance,
)
from thyronet.metrics._delong import _midranks_sorted


def _naive_placements(y, s):
    """DeLong et al. (1988) placements by the pairwise definition."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)


def _naive_delong(y, a, b):
    v10a, v01a = _naive_placements(y, a)
    v10b, v01b = _naive_placements(y, b)
    m, n = v10a.size, v01a.size
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    return np.array([v10a.mean(), v10b.mean()]), s10 / m + s01 / n


def _tied_data(rng, n=150, levels=7):
    y = rng.integers(0, 2, n)
    a = np.round(y + rng.normal(0, 1.2, n), 1)  # ties
    b = rng.integers(0, levels, n) + y  # heavy ties
    return y, a, b.astype(float)


@pytest.mark.parametrize("seed", range(5))
def test_fast_delong_equals_pairwise_definition(seed):
    rng = np.random.default_rng(seed)
    y, a, b = _tied_data(rng)
    aucs, cov = _naive_delong(y, a, b)
    test = delong_test(y, a, b)
    assert_allclose([test.auc_a, test.auc_b], aucs, rtol=1e-12)
    assert_allclose(
        [test.var_a, test.covariance, test.var_b], [cov[0, 0], cov[0, 1], cov[1, 1]], rtol=1e-10
    )
    z = (aucs[0] - aucs[1]) / np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert_allclose(test.z, z, rtol=1e-9)
    assert_allclose(test.p_value, 2 * stats.norm.sf(abs(z)), rtol=1e-9)
    half = stats.norm.ppf(0.975) * (test.difference / test.z)
    assert_allclose(
        [test.ci_low, test.ci_high], [test.difference - half, test.difference + half], rtol=1e-9
    )


def test_auc_matches_sklearn_and_direction_is_never_flipped():
    rng = np.random.default_rng(3)
    y, a, _ = _tied_data(rng, n=300)
    test = delong_test(y, a, -a)
    assert_allclose(test.auc_a, roc_auc_score(y, a), rtol=1e-12)
    assert_allclose(test.auc_b, 1 - test.auc_a, rtol=1e-12)  # reported below 0.5, not flipped
    assert test.auc_b < 0.5


def test_midranks_average_ties():
    assert_allclose(_midranks_sorted(np.array([1.0, 2, 2, 3, 3, 3])), [1, 2.5, 2.5, 5, 5, 5])
    assert _midranks_sorted(np.array([])).size == 0


def test_results_do_not_depend_on_subject_order():
    rng = np.random.default_rng(4)
    y, a, b = _tied_data(rng)
    perm = rng.permutation(y.size)
    first, second = delong_test(y, a, b), delong_test(y[perm], a[perm], b[perm])
    assert_allclose([first.z, first.covariance], [second.z, second.covariance], rtol=1e-12)


def test_identical_scores_give_z_zero_and_p_one():
    rng = np.random.default_rng(5)
    y, a, _ = _tied_data(rng)
    test = delong_test(y, a, a.copy())
    assert test.z == 0.0 and test.p_value == 1.0 and test.difference == 0.0
    # a monotone transform ranks the subjects identically too
    test = delong_test(y, a, np.exp(a))
    assert test.z == 0.0 and test.p_value == 1.0


def test_perfect_and_reversed_scores_give_infinite_z():
    y = np.array([0, 0, 0, 1, 1, 1])
    test = delong_test(y, [1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
    assert test.auc_a == 1.0 and test.auc_b == 0.0
    assert test.z == np.inf and test.p_value == 0.0


def test_confidence_level_changes_difference_interval():
    rng = np.random.default_rng(6)
    y, a, b = _tied_data(rng)
    narrow = delong_test(y, a, b, confidence=0.5)
    wide = delong_test(y, a, b)
    assert isinstance(wide, DeLongTest)
    assert wide.ci_low < narrow.ci_low < narrow.ci_high < wide.ci_high
    assert narrow.p_value == wide.p_value


def test_variance_and_covariance_accessors():
    y = [0, 0, 1, 1, 0, 1]
    s = [0.1, 0.4, 0.35, 0.8, 0.2, 0.7]
    # placements: positives 2/3, 1, 1; negatives 1, 2/3, 1 -> (1/27) / 3 * 2
    assert_allclose(delong_variance(y, s), 2 * (6 / 81 / 2) / 3, rtol=1e-12)
    assert_allclose(delong_covariance(y, s, s), delong_variance(y, s), rtol=1e-12)


def test_accepts_pandas_bool_labels_and_does_not_modify_inputs():
    rng = np.random.default_rng(7)
    y, a, b = _tied_data(rng)
    frame = pd.DataFrame({"y": y.astype(bool), "a": a, "b": b})
    before = frame.copy()
    test = delong_test(frame["y"], frame["a"], frame["b"])
    pd.testing.assert_frame_equal(frame, before)
    assert_allclose(test.auc_a, roc_auc_score(y, a))


def test_unpaired_welch_formula_by_hand():
    rng = np.random.default_rng(8)
    ya, a, _ = _tied_data(rng, n=80)
    yb, b, _ = _tied_data(rng, n=60)
    va, vb = delong_variance(ya, a), delong_variance(yb, b)
    res = delong_test_unpaired(ya, a, yb, b)
    stat = (roc_auc_score(ya, a) - roc_auc_score(yb, b)) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 79 + vb**2 / 59)
    assert_allclose([res.statistic, res.df], [stat, df], rtol=1e-12)
    assert_allclose(res.p_value, 2 * stats.t.sf(abs(stat), df), rtol=1e-12)
    assert (res.var_a, res.var_b) == (va, vb)


def test_unpaired_with_two_perfect_cohorts():
    y = [0, 0, 1, 1]
    res = delong_test_unpaired(y, [1, 2, 3, 4], y, [1, 2, 5, 6])
    assert res.statistic == 0.0 and res.p_value == 1.0 and np.isnan(res.df)


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("func", ["variance", "test"])
def test_single_class_is_rejected(func):
    with pytest.raises(ValueError, match="single class: all 4 subjects are 1"):
        if func == "variance":
            delong_variance([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4])
        else:
            delong_test([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.nan, "score_b contains NaN at position"),
        (np.inf, "score_b contains infinite values at position"),
        (-np.inf, "score_b contains infinite values at position"),
    ],
)
def test_nan_and_inf_scores_are_rejected(bad, message):
    b = [0.1, 0.2, bad, 0.4, 0.5, 0.6]
    with pytest.raises(ValueError, match=message + r"\(s\) 2"):
        delong_test([0, 1, 0, 1, 0, 1], [1, 2, 3, 4, 5, 6], b)


def test_different_lengths_are_rejected():
    with pytest.raises(ValueError, match="score_a has 5 values but y_true has 6"):
        delong_test([0, 1, 0, 1, 0, 1], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6])
    with pytest.raises(ValueError, match="score_b has 3 values but y_b has 4"):
        delong_test_unpaired([0, 1, 0, 1], [1, 2, 3, 4], [0, 1, 0, 1], [1, 2, 3])


def test_one_subject_of_a_class_is_rejected():
    with pytest.raises(
        ValueError,
        match="at least 2 positive and 2 negative subjects; y_true has 1 positive and 4 negative",
    ):
        delong_variance([0, 0, 0, 0, 1], [1, 2, 3, 4, 5])


@pytest.mark.parametrize(
    "labels, message",
    [
        ([0, 1, 2, 1], r"0/1 labels .*got \[2.0\] at position\(s\) 2"),
        (["no", "yes", "no", "yes"], "non-numeric values"),
        ([0, 1, np.nan, 1], "y_true contains NaN"),
    ],
)
def test_labels_must_be_zero_one(labels, message):
    with pytest.raises(ValueError, match=message):
        delong_variance(labels, [1, 2, 3, 4])


def test_nullable_pandas_dtypes():
    y = pd.Series([0, 1, 0, 1, 0, 1], dtype="Int64")
    s = pd.Series([0.1, 0.9, 0.3, 0.4, 0.2, 0.8], dtype="Float64")
    assert delong_test(y, s, s).auc_a == roc_auc_score([0, 1, 0, 1, 0, 1], s.to_numpy(float))
    with pytest.raises(ValueError, match=r"score_a contains NaN at position\(s\) 2"):
        delong_test(y, s.where(s != 0.3), s)
    with pytest.raises(ValueError, match=r"y_true contains NaN at position\(s\) 0"):
        delong_test(y.where(y.index > 0), s, s)
    labels = pd.Series([False, True, False, True, False, True], dtype="boolean")
    assert delong_variance(labels, s) == delong_variance(y, s)


def test_two_dimensional_scores_are_rejected():
    with pytest.raises(ValueError, match="one-dimensional"):
        delong_variance([0, 1, 0, 1], np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"predict_proba\(X\)\[:, 1\]"):
        delong_variance([0, 1, 0, 1], np.ones((4, 1)))


def test_bad_confidence_is_rejected():
    with pytest.raises(ValueError, match="confidence must be a number strictly between"):
        delong_test([0, 1, 0, 1], [1, 2, 3, 4], [4, 3, 2, 1], confidence=95)

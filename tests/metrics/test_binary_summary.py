"""binary_summary and Wilson intervals."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from sklearn.metrics import f1_score

from thyronet.metrics import BinarySummary, Proportion, binary_summary, wilson_interval


def _wilson(k, n):
    z = stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def test_wilson_interval_by_formula():
    for k, n in [(0, 10), (3, 10), (10, 10), (57, 114)]:
        p = wilson_interval(k, n)
        assert isinstance(p, Proportion)
        estimate, low, high = p
        assert estimate == k / n and (p.count, p.total) == (k, n)
        assert_allclose([low, high], _wilson(k, n), rtol=1e-12, atol=1e-15)
    empty = wilson_interval(0, 0)
    assert np.isnan([empty.estimate, empty.low, empty.high]).all()


def test_binary_summary_counts_and_intervals():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.5, 0.2, 0.7, 0.1, 0.3, 0.5, 0.4, 0.6])
    out = binary_summary(y, s, threshold=0.5)
    assert isinstance(out, BinarySummary)
    # positive when score >= 0.5: TP = 0.9, 0.8, 0.5, 0.6; FP = 0.7, 0.5
    assert (out.tp, out.fp, out.tn, out.fn) == (4, 2, 3, 1)
    expected = {
        "accuracy": (7, 10),
        "sensitivity": (4, 5),
        "specificity": (3, 5),
        "ppv": (4, 6),
        "npv": (3, 4),
    }
    for name, (k, n) in expected.items():
        metric = getattr(out, name)
        assert metric.estimate == k / n
        assert_allclose([metric.low, metric.high], _wilson(k, n), rtol=1e-12)
    assert out.f1.estimate == pytest.approx(f1_score(y, s >= 0.5), rel=1e-12)
    j_low, j_high = _wilson(4, 7)  # Jaccard TP / (TP + FP + FN) = 4 / 7
    assert_allclose(
        [out.f1.low, out.f1.high], [2 * j_low / (1 + j_low), 2 * j_high / (1 + j_high)], rtol=1e-12
    )
    frame = out.to_frame()
    assert list(frame.index) == ["accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"]
    assert frame.loc["npv", "total"] == 4


def test_empty_denominator_gives_nan():
    out = binary_summary([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], threshold=0.9)
    assert out.tp == out.fp == 0
    assert np.isnan(out.ppv.estimate) and np.isnan(out.ppv.low)
    assert out.specificity.estimate == 1.0


def test_confidence_level():
    wide = binary_summary([0, 1, 0, 1, 1], [0.1, 0.8, 0.6, 0.7, 0.2], confidence=0.99)
    narrow = binary_summary([0, 1, 0, 1, 1], [0.1, 0.8, 0.6, 0.7, 0.2], confidence=0.8)
    assert wide.accuracy.low < narrow.accuracy.low


@pytest.mark.parametrize("threshold", [np.nan, "high", [0.5], True, np.inf])
def test_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold must be one finite number"):
        binary_summary([0, 1], [0.2, 0.8], threshold)


def test_bad_input():
    with pytest.raises(ValueError, match="y_score contains NaN"):
        binary_summary([0, 1], [np.nan, 0.8])
    with pytest.raises(ValueError, match="y_score has 1 values but y_true has 2"):
        binary_summary([0, 1], [0.8])
    with pytest.raises(ValueError, match="0/1 labels"):
        binary_summary([0, 2], [0.2, 0.8])

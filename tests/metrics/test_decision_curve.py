"""decision_curve against a hand-computed example."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from thyronet.metrics import decision_curve


def test_hand_computed_example():
    y = [1, 1, 0, 0, 0]
    p = [0.9, 0.4, 0.6, 0.2, 0.1]
    dc = decision_curve(y, p, [0.0, 0.1, 0.4, 0.5, 0.95])
    # pt = 0.0: everyone treated, odds 0        -> NB = 2/5
    # pt = 0.1: all 5 treated (p >= 0.1), TP 2, FP 3, odds 1/9 -> 2/5 - 3/5 / 9 = 1/3
    # pt = 0.4: p >= 0.4 treats 0.9, 0.4, 0.6: TP 2, FP 1, odds 2/3 -> 2/5 - 1/5 * 2/3 = 4/15
    # pt = 0.5: 0.9, 0.6 treated: TP 1, FP 1, odds 1 -> 0
    # pt = 0.95: nobody treated -> 0
    assert_allclose(dc["net_benefit"], [2 / 5, 1 / 3, 4 / 15, 0, 0], atol=1e-15)
    # treat all: prevalence 2/5 - 3/5 * odds
    assert_allclose(
        dc["net_benefit_all"], [2 / 5, 1 / 3, 0, -1 / 5, 2 / 5 - 3 / 5 * 19], atol=1e-12
    )
    assert (dc["net_benefit_none"] == 0).all()
    assert dc["true_positives"].tolist() == [2, 2, 2, 1, 0]
    assert dc["false_positives"].tolist() == [3, 3, 1, 1, 0]
    assert list(dc.columns) == [
        "threshold",
        "net_benefit",
        "net_benefit_all",
        "net_benefit_none",
        "true_positives",
        "false_positives",
    ]


def test_default_thresholds_and_treat_all_equivalence():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p).astype(int)
    dc = decision_curve(y, p)
    assert_allclose(dc["threshold"], np.arange(1, 100) / 100)
    # a model that gives everyone probability 1 is "treat all"
    everyone = decision_curve(y, np.ones(200))
    assert_allclose(everyone["net_benefit"], everyone["net_benefit_all"], atol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match=r"thresholds must lie in \[0, 1\)"):
        decision_curve([0, 1], [0.2, 0.8], [0.5, 1.0])
    with pytest.raises(ValueError, match=r"thresholds must lie in \[0, 1\)"):
        decision_curve([0, 1], [0.2, 0.8], [-0.1])
    with pytest.raises(ValueError, match="thresholds contains NaN"):
        decision_curve([0, 1], [0.2, 0.8], [np.nan])
    with pytest.raises(ValueError, match=r"y_prob must be probabilities in \[0, 1\]"):
        decision_curve([0, 1], [0.2, 1.8])
    with pytest.raises(ValueError, match="y_prob has 3 values but y_true has 2"):
        decision_curve([0, 1], [0.2, 0.8, 0.1])

"""decision_curve against a hand-computed example and the dcurves package, and its band."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
        "interventions_avoided",
    ]
    # (NB - NB_all) * 100 / odds; undefined at pt = 0
    assert np.isnan(dc["interventions_avoided"][0])
    assert_allclose(dc["interventions_avoided"][1:3], [0, (4 / 15) * 100 / (2 / 3)], atol=1e-12)


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


def _example(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.3).astype(int)
    p = np.clip(0.3 + 0.25 * (y - 0.3) + rng.normal(0, 0.15, n), 0.01, 0.99)
    return y, np.round(p, 3)


def test_matches_dcurves():
    dcurves = pytest.importorskip(
        "dcurves", reason="dcurves needs pandas < 3, so it is no test extra; the formula test runs"
    )
    y, p = _example()
    pts = np.round(np.arange(1, 100) / 100.0, 2)
    ours = decision_curve(y, p, pts)
    ref = dcurves.dca(
        data=pd.DataFrame({"y": y, "m": p}), outcome="y", modelnames=["m"], thresholds=pts
    )
    model = ref[ref["model"] == "m"].reset_index(drop=True)
    everyone = ref[ref["model"] == "all"].reset_index(drop=True)
    assert_allclose(ours["net_benefit"], model["net_benefit"], rtol=1e-12, atol=1e-14)
    assert_allclose(ours["net_benefit_all"], everyone["net_benefit"], rtol=1e-12, atol=1e-14)
    assert_allclose(
        ours["interventions_avoided"],
        100 * model["net_intervention_avoided"].to_numpy(dtype=float),
        rtol=1e-10,
        atol=1e-12,
    )


def test_documented_formulas_without_dcurves():
    y, p = _example(seed=1)
    pts = np.array([0.05, 0.2, 0.35, 0.6])
    dc = decision_curve(y, p, pts)
    n, odds = y.size, pts / (1 - pts)
    for k, pt in enumerate(pts):
        treated = p >= pt
        tp, fp = np.sum(treated & (y == 1)), np.sum(treated & (y == 0))
        nb = tp / n - fp / n * odds[k]
        nb_all = y.mean() - (1 - y.mean()) * odds[k]
        assert dc["net_benefit"][k] == pytest.approx(nb, abs=1e-15)
        assert dc["interventions_avoided"][k] == pytest.approx((nb - nb_all) * 100 / odds[k])


def test_bootstrap_band():
    y, p = _example()
    dc = decision_curve(y, p, n_bootstrap=300, ci=0.9, random_state=0)
    assert list(dc.columns[-2:]) == ["net_benefit_low", "net_benefit_high"]
    assert (dc["net_benefit_low"] <= dc["net_benefit_high"]).all()
    inside = (dc["net_benefit_low"] <= dc["net_benefit"] + 1e-12) & (
        dc["net_benefit"] <= dc["net_benefit_high"] + 1e-12
    )
    assert inside.mean() > 0.9
    again = decision_curve(y, p, n_bootstrap=300, ci=0.9, random_state=0)
    pd.testing.assert_frame_equal(dc, again)
    wider = decision_curve(y, p, n_bootstrap=300, ci=0.99, random_state=0)
    assert (wider["net_benefit_high"] - wider["net_benefit_low"]).mean() > (
        dc["net_benefit_high"] - dc["net_benefit_low"]
    ).mean()
    # a stratified bootstrap keeps the prevalence: the band at pt -> 0 is the point value
    low = decision_curve(y, p, [0.0], n_bootstrap=50, random_state=0)
    assert low["net_benefit_low"][0] == low["net_benefit_high"][0] == low["net_benefit"][0]
    with pytest.raises(ValueError, match="needs positive and negative"):
        decision_curve(np.zeros(5), np.full(5, 0.2), n_bootstrap=10)
    with pytest.raises(ValueError, match="n_bootstrap"):
        decision_curve(y, p, n_bootstrap=-1)

"""compare_models and evaluate_cohorts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from thyronet.metrics import (
    BinarySummary,
    ModelComparison,
    binary_summary,
    compare_models,
    delong_test,
    evaluate_cohorts,
    roc_auc_ci,
    youden_threshold,
)


def _models(seed=0, n=240):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scores = {
        "DL_F": y + rng.normal(0, 0.9, n),
        "Combined": y + rng.normal(0, 0.6, n),
        "Clinical": np.round(y + rng.normal(0, 1.5, n), 1),
    }
    return y, scores


def test_compare_models_equals_pairwise_delong_tests():
    y, scores = _models()
    cmp = compare_models(y, scores)
    assert isinstance(cmp, ModelComparison)
    assert list(cmp.auc.index) == ["DL_F", "Combined", "Clinical"]
    for name, s in scores.items():
        auc, low, high = roc_auc_ci(y, s)
        assert_allclose(
            cmp.auc.loc[name, ["auc", "ci_low", "ci_high"]], [auc, low, high], rtol=1e-12
        )
        assert cmp.auc.loc[name, "AUC (95% CI)"] == f"{auc:.3f} ({low:.3f}-{high:.3f})"
    assert np.isnan(np.diag(cmp.p_values.to_numpy())).all()
    assert_allclose(cmp.p_values.to_numpy(), cmp.p_values.to_numpy().T)
    assert len(cmp.pairs) == 3
    for _, pair in cmp.pairs.iterrows():
        test = delong_test(y, scores[pair.model_a], scores[pair.model_b])
        assert_allclose(
            [pair.z, pair.p_value, pair.ci_low, pair.ci_high],
            [test.z, test.p_value, test.ci_low, test.ci_high],
            rtol=1e-12,
        )
        assert cmp.p_values.loc[pair.model_b, pair.model_a] == test.p_value


def test_compare_one_model_and_confidence_label():
    y, scores = _models()
    cmp = compare_models(y, {"only": scores["DL_F"]}, confidence=0.9)
    assert "AUC (90% CI)" in cmp.auc.columns
    assert cmp.pairs.empty and cmp.p_values.shape == (1, 1)


def test_compare_models_bad_input():
    y, scores = _models()
    with pytest.raises(ValueError, match="non-empty mapping"):
        compare_models(y, [scores["DL_F"]])
    with pytest.raises(ValueError, match=r"scores\['bad'\] contains NaN"):
        compare_models(y, {"bad": np.r_[np.nan, scores["DL_F"][1:]]})
    with pytest.raises(ValueError, match=r"scores\['short'\] has 10 values but y_true has 240"):
        compare_models(y, {"short": scores["DL_F"][:10]})
    with pytest.raises(ValueError, match="single class"):
        compare_models(np.zeros(240), scores)


def _cohorts(n=240):
    return np.repeat(["test", "train", "validation"], [60, 120, 60])[
        np.random.default_rng(9).permutation(n)
    ]


def test_evaluate_cohorts_layout_and_values():
    y, scores = _models()
    cohorts = pd.Series(_cohorts())
    table = evaluate_cohorts(y, scores, cohorts)
    assert table.index.names == ["model", "cohort"]
    assert list(table.loc["DL_F"].index) == ["train", "validation", "test"]  # paper order
    assert list(table.columns) == [
        "n",
        "n_positive",
        "auc",
        "auc_low",
        "auc_high",
        "AUC (95% CI)",
        "threshold",
        "accuracy",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "f1",
        *[f"{m}_{e}" for m in BinarySummary.METRICS for e in ("low", "high")],
        "tp",
        "fp",
        "tn",
        "fn",
    ]
    mask = (cohorts == "validation").to_numpy()
    row = table.loc[("Combined", "validation")]
    auc, low, high = roc_auc_ci(y[mask], scores["Combined"][mask])
    assert_allclose([row.auc, row.auc_low, row.auc_high], [auc, low, high], rtol=1e-12)
    summary = binary_summary(y[mask], scores["Combined"][mask], 0.5)
    assert row.sensitivity == summary.sensitivity.estimate
    assert row.specificity == summary.specificity.estimate
    assert row.accuracy == summary.accuracy.estimate
    assert (row.ppv, row.ppv_low, row.ppv_high) == tuple(summary.ppv)[:3]
    assert (row.f1_low, row.npv_high) == (summary.f1.low, summary.npv.high)
    assert (row.tp, row.fp, row.tn, row.fn) == (summary.tp, summary.fp, summary.tn, summary.fn)
    assert row.n == 60 and row.threshold == 0.5


def test_evaluate_cohorts_youden_from_reference_cohort():
    y, scores = _models()
    cohorts = _cohorts()
    table = evaluate_cohorts(y, scores, cohorts, threshold="youden")
    train = cohorts == "train"
    for name, s in scores.items():
        expected = youden_threshold(y[train], s[train]).threshold
        assert (table.loc[name, "threshold"] == expected).all()
    other = evaluate_cohorts(y, scores, cohorts, threshold="youden", reference_cohort="test")
    test = cohorts == "test"
    assert (
        other.loc[("DL_F", "train"), "threshold"]
        == youden_threshold(y[test], scores["DL_F"][test]).threshold
    )


def test_evaluate_cohorts_thresholds_per_model_and_other_cohort_names():
    y, scores = _models()
    centres = np.where(np.arange(240) < 100, "B", "A")
    table = evaluate_cohorts(
        y, scores, centres, threshold={"DL_F": 0.1, "Combined": 0.2, "Clinical": 0.3}
    )
    assert list(table.loc["DL_F"].index) == ["B", "A"]  # order of first appearance
    assert table.loc[("Clinical", "A"), "threshold"] == 0.3


def test_evaluate_cohorts_bad_input():
    y, scores = _models()
    cohorts = _cohorts()
    with pytest.raises(ValueError, match="threshold mapping must name exactly the models"):
        evaluate_cohorts(y, scores, cohorts, threshold={"DL_F": 0.5})
    with pytest.raises(ValueError, match="threshold must be a number, a mapping or 'youden'"):
        evaluate_cohorts(y, scores, cohorts, threshold="best")
    with pytest.raises(ValueError, match="reference_cohort 'dev' is not among the cohorts"):
        evaluate_cohorts(y, scores, cohorts, threshold="youden", reference_cohort="dev")
    with pytest.raises(ValueError, match=r"one value per subject \(240\)"):
        evaluate_cohorts(y, scores, cohorts[:10])
    with pytest.raises(ValueError, match="cohorts is missing at position"):
        evaluate_cohorts(y, scores, np.r_[[None], cohorts[1:]])
    single = y.copy()
    single[cohorts == "test"] = 1
    with pytest.raises(ValueError, match="cohort 'test': y_true has a single class"):
        evaluate_cohorts(single, scores, cohorts)

"""bootstrap_validate against R's rms::validate, and on the clinical pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from thyronet.datasets import make_ptmc_cohort
from thyronet.metrics import bootstrap_validate
from thyronet.metrics._bootstrap_validate import _grouped_folds, _inner_cv_params, _recalibration
from thyronet.pipelines import make_clinical_model

RMS = Path(__file__).parent / "data" / "rms"
EXPECTED = pd.read_csv(RMS / "validate_expected.csv")


def _unpenalised():
    return LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-10, max_iter=1000)


@pytest.mark.parametrize("dataset", EXPECTED["dataset"].tolist())
def test_matches_rms_validate(dataset):
    expected = EXPECTED.set_index("dataset").loc[dataset]
    data = pd.read_csv(RMS / f"validate_data_{dataset}.csv")
    X = data.filter(regex=r"^x\d+$").to_numpy()
    assert X.shape == (expected["n"], expected["predictors"])
    table = bootstrap_validate(_unpenalised(), X, data["y"], n_bootstrap=1000, random_state=0)
    # the apparent values are deterministic: R's lrm gives the same fit
    assert table.loc["auc", "apparent"] == pytest.approx(expected["c_apparent"], abs=1e-9)
    assert table.loc["slope", "apparent"] == pytest.approx(1.0, abs=1e-8)
    assert table.loc["intercept", "apparent"] == pytest.approx(0.0, abs=1e-8)
    # Monte Carlo: within the README's bounds of R's B = 2000 estimates
    assert abs(table.loc["auc", "corrected"] - expected["c_corrected"]) < 0.005
    assert abs(table.loc["auc", "optimism"] - expected["c_optimism"]) < 0.005
    assert abs(table.loc["slope", "corrected"] - expected["slope_corrected"]) < 0.03
    assert abs(table.loc["intercept", "corrected"] - expected["intercept_corrected"]) < 0.03
    assert table.attrs == {"n_bootstrap": 1000, "n_failed": 0, "grouped_inner_cv": []}


def test_shape_seed_and_jobs_do_not_change_the_result():
    data = pd.read_csv(RMS / "validate_data_1.csv")
    X, y = data.filter(regex=r"^x\d+$"), data["y"]
    one = bootstrap_validate(_unpenalised(), X, y, n_bootstrap=20, random_state=3)
    two = bootstrap_validate(_unpenalised(), X, y, n_bootstrap=20, random_state=3, n_jobs=2)
    assert list(one.index) == ["auc", "slope", "intercept", "brier"]
    assert list(one.columns) == ["apparent", "optimism", "corrected"]
    pd.testing.assert_frame_equal(one, two)
    np.testing.assert_allclose(one["corrected"], one["apparent"] - one["optimism"])
    other = bootstrap_validate(_unpenalised(), X, y, n_bootstrap=20, random_state=4)
    assert not np.allclose(one["optimism"], other["optimism"])


def test_recalibration_matches_statsmodels():
    import statsmodels.api as sm

    rng = np.random.default_rng(1)
    lp = rng.normal(size=300)
    y = (rng.uniform(size=300) < 1 / (1 + np.exp(-(0.3 + 0.7 * lp)))).astype(float)
    fit = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit(tol=1e-12)
    np.testing.assert_allclose(_recalibration(y, lp), fit.params, rtol=1e-8)
    assert np.isnan(_recalibration(y, np.zeros(300))).all()


def test_input_errors():
    X, y = np.zeros((4, 1)), [0, 1, 0, 1]
    with pytest.raises(TypeError, match="predict_proba"):
        bootstrap_validate(object(), X, y)
    with pytest.raises(ValueError, match="n_bootstrap"):
        bootstrap_validate(_unpenalised(), X, y, n_bootstrap=0)
    with pytest.raises(ValueError, match="rows"):
        bootstrap_validate(_unpenalised(), X, [0, 1, 0])


def test_refits_the_whole_clinical_pipeline():
    cohort = make_ptmc_cohort(n_patients=80, image_size=16, random_state=0)
    model = make_clinical_model().set_params(lasso__alphas=10, classify__cv=3)
    table = bootstrap_validate(model, cohort, cohort["clnm"], n_bootstrap=4, random_state=0)
    assert table.notna().all().all()
    assert 0.5 < table.loc["auc", "apparent"] <= 1.0
    assert 0 < table.loc["brier", "apparent"] < 0.25
    assert table.attrs["grouped_inner_cv"] == ["classify__cv", "lasso__cv"]


def test_inner_cv_parameters_found():
    model = make_clinical_model().set_params(classify__cv=StratifiedKFold(4))
    assert _inner_cv_params(model) == {"lasso__cv": 5, "classify__cv": 4}
    assert _inner_cv_params(_unpenalised()) == {}
    custom = GridSearchCV(DecisionTreeClassifier(), {"max_depth": [1, 2]}, cv=[([0], [1])])
    assert _inner_cv_params(custom) == {}  # the user's own splits are left alone


def test_grouped_folds_keep_a_subjects_copies_together():
    rng = np.random.default_rng(0)
    y01 = (rng.uniform(size=100) < 0.3).astype(float)
    idx = rng.integers(0, 100, 100)
    folds = _grouped_folds(y01, idx, 5, seed=0)
    assert len(folds) == 5
    seen = np.zeros(idx.size, dtype=int)
    for train, test in folds:
        assert not set(idx[train]) & set(idx[test])
        assert 0 < y01[idx[test]].sum() < test.size  # both classes in every fold
        seen[test] += 1
    np.testing.assert_array_equal(seen, 1)
    few = np.array([0, 0, 1, 1, 1, 2, 3, 3])  # 2 subjects per class: 2 folds at most
    assert len(_grouped_folds(np.array([1.0, 1, 0, 0, 0, 1, 0, 0]), few, 5, seed=0)) == 2


def test_grouped_inner_cv_stops_duplicates_from_choosing_a_memorising_model():
    # A weak true signal. On the data, 40 neighbours beat 1 in CV. In a bootstrap sample
    # with ungrouped inner folds a subject's copy sits in the training fold of its own
    # validation row, so 1-NN "predicts" it and is chosen: the optimism is inflated
    # and the corrected AUC of a model with real signal drops below 0.5.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (rng.uniform(size=200) < 1 / (1 + np.exp(-1.2 * X[:, 0]))).astype(int)
    search = GridSearchCV(KNeighborsClassifier(), {"n_neighbors": [1, 40]}, cv=5, scoring="roc_auc")
    assert search.fit(X, y).best_params_ == {"n_neighbors": 40}
    grouped = bootstrap_validate(search, X, y, n_bootstrap=30, random_state=0)
    ungrouped = bootstrap_validate(
        search, X, y, n_bootstrap=30, random_state=0, group_inner_cv=False
    )
    assert grouped.attrs["grouped_inner_cv"] == ["cv"] and search.cv == 5
    assert ungrouped.attrs["grouped_inner_cv"] == []
    assert grouped.loc["auc", "optimism"] < ungrouped.loc["auc", "optimism"] - 0.05
    assert ungrouped.loc["auc", "corrected"] < 0.5 < grouped.loc["auc", "corrected"]

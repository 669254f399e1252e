"""nomogram: points of random patients map back to the pipeline's predict_proba."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import SelectKBest
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from thyronet import ClassifierSelector
from thyronet.datasets import make_ptmc_cohort
from thyronet.metrics import Nomogram, nomogram
from thyronet.pipelines import make_clinical_model


@pytest.fixture(scope="module")
def cohort():
    return make_ptmc_cohort(n_patients=160, image_size=16, random_state=0)


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [rng.normal(50, 10, n), rng.integers(0, 2, n), rng.normal(0, 1, n), rng.normal(5, 2, n)]
    )
    lp = 0.08 * (X[:, 0] - 50) + 1.2 * X[:, 1] - 0.6 * X[:, 2] - 0.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-lp))).astype(int)
    return X, y


def test_clinical_pipeline_points_map_back_to_predict_proba(cohort):
    model = make_clinical_model().set_params(
        lasso__alphas=10, classify__cv=3, classify__candidates=["logistic_regression"]
    )
    model.fit(cohort, cohort["clnm"])
    nomo = nomogram(model, cohort)
    assert isinstance(nomo, Nomogram)
    # the predictors are the encoder's features that survive the P-value filter and LASSO
    assert set(nomo.predictors.index) == set(model.get_feature_names_out())
    assert nomo.predictors["max_points"].iloc[0] == pytest.approx(100.0)
    rng = np.random.default_rng(1)
    patients = cohort.iloc[rng.choice(len(cohort), 40, replace=False)]
    total = nomo.points(patients)["total"]
    expected = model.predict_proba(patients)[:, 1]
    np.testing.assert_allclose(nomo.probability(total), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        nomo.linear_predictor(total), np.log(expected / (1 - expected)), atol=1e-6
    )


def test_folds_scaler_and_selector_into_original_units():
    X, y = _data()
    model = make_pipeline(StandardScaler(), SelectKBest(k=3), LogisticRegression(C=1e6))
    model.fit(X, y)
    nomo = nomogram(model, X)
    kept = model[1].get_support()
    assert nomo.predictors.index.tolist()[0] == "x0"  # widest range of contributions
    assert sorted(nomo.predictors.index) == sorted(f"x{i}" for i in np.flatnonzero(kept))
    # coefficients per original unit: close to an unpenalised fit on the raw features
    raw = LogisticRegression(C=1e6, max_iter=5000).fit(X[:, kept], y)
    np.testing.assert_allclose(
        nomo.predictors.sort_index()["coef"], raw.coef_[0], rtol=1e-3, atol=1e-4
    )
    total = nomo.points(X)["total"]
    np.testing.assert_allclose(nomo.probability(total), model.predict_proba(X)[:, 1], atol=1e-6)
    # 0/1 feature: ticks 0 and 1; points 0 at the unfavourable end
    assert nomo.scales["x1"]["value"].tolist() == [0.0, 1.0]
    assert nomo.scales["x1"]["points"].min() == pytest.approx(0.0)
    # total points -> probability tables agree with the mapping
    tp = nomo.total_points
    np.testing.assert_allclose(tp["probability"], nomo.probability(tp["total_points"]))
    ps = nomo.probability_scale
    np.testing.assert_allclose(nomo.probability(ps["total_points"]), ps["probability"])


def test_range_from_the_scaler_without_x_and_through_classifier_selector():
    X, y = _data()
    model = make_pipeline(
        StandardScaler(), ClassifierSelector(candidates=["logistic_regression"], cv=3)
    ).fit(X, y)
    nomo = nomogram(model)
    mean, sd = X.mean(axis=0), X.std(axis=0)
    x0 = nomo.predictors.loc["x0"]
    assert x0["low"] == pytest.approx(mean[0] - 2 * sd[0])
    assert x0["high"] == pytest.approx(mean[0] + 2 * sd[0])
    total = nomo.points(X[:25])["total"]
    np.testing.assert_allclose(
        nomo.probability(total), model.predict_proba(X[:25])[:, 1], atol=1e-6
    )
    with pytest.raises(ValueError, match="pass X"):
        nomogram(LogisticRegression().fit(X, y))
    frame = pd.DataFrame(X, columns=["age", "male", "z", "w"])
    named = nomogram(LogisticRegression().fit(frame, y), frame)
    assert "age" in named.predictors.index


def test_non_linear_classifiers_raise_a_clear_error():
    X, y = _data()
    with pytest.raises(TypeError, match="GaussianNB: its log-odds are quadratic"):
        nomogram(make_pipeline(StandardScaler(), GaussianNB()).fit(X, y), X)
    selector = ClassifierSelector(candidates=["naive_bayes"], cv=3).fit(X, y)
    with pytest.raises(TypeError, match="additive linear function"):
        nomogram(selector, X)
    import lightgbm  # a hard dependency of thyronet: never skipped

    boosted = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    with pytest.raises(TypeError, match="LGBMClassifier: its log-odds are a sum of trees"):
        nomogram(boosted, X)
    multi = LogisticRegression().fit(X[:, 2:], np.arange(len(y)) % 3)
    with pytest.raises(ValueError, match="binary"):
        nomogram(multi, X[:, 2:])

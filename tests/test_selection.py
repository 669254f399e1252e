"""PValueSelector and LassoSelector: tests, selection, paths, bad input, no leakage."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Lasso, LassoCV, LogisticRegression, MultiTaskLasso
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from thyronet import ClassifierSelector, LassoSelector, PValueSelector


def _mixed(n=120, seed=0):
    """Two informative features (continuous, binary), two noise ones, as a DataFrame."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    frame = pd.DataFrame(
        {
            "signal": y + rng.normal(size=n),
            "noise": rng.normal(size=n),
            "binary_signal": (rng.random(n) < 0.2 + 0.6 * y).astype(float),
            "binary_noise": (rng.random(n) < 0.5).astype(float),
        }
    )
    return frame, y


def _linear(n=200, p=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = (X[:, 0] + 0.8 * X[:, 1] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


# --------------------------------------------------------------------------- PValueSelector
def test_pvalue_selector_keeps_informative_features_with_the_documented_tests():
    X, y = _mixed()
    selector = PValueSelector().fit(X, y)
    assert selector.get_feature_names_out().tolist() == ["signal", "binary_signal"]
    assert selector.tests_.tolist() == ["mannwhitneyu", "mannwhitneyu", "chi2", "chi2"]
    assert selector.discrete_mask_.tolist() == [False, False, True, True]
    for j, name in enumerate(["signal", "noise"]):
        expected = stats.mannwhitneyu(X[name][y == 0], X[name][y == 1]).pvalue
        assert selector.pvalues_[j] == pytest.approx(expected)
    table = pd.crosstab(X["binary_noise"], y).to_numpy()
    assert selector.pvalues_[3] == pytest.approx(stats.chi2_contingency(table).pvalue)
    assert selector.n_significant_ == 2


def test_pvalue_selector_welch_and_fisher_for_small_tables():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 12)
    rare = np.zeros(24)
    rare[[0, 13, 14, 15]] = 1  # expected counts < 5 in a 2 x 2 table
    X = np.column_stack([y * 0.8 + rng.normal(size=24), rare])
    selector = PValueSelector(continuous_test="welch").fit(X, y)
    assert selector.tests_.tolist() == ["welch", "fisher"]
    assert selector.pvalues_[0] == pytest.approx(
        stats.ttest_ind(X[y == 0, 0], X[y == 1, 0], equal_var=False).pvalue
    )
    table = [[11, 9], [1, 3]]
    assert selector.pvalues_[1] == pytest.approx(stats.fisher_exact(table).pvalue)


def test_pvalue_selector_pvalues_do_not_change_with_standardisation():
    X, y = _mixed()
    raw = PValueSelector().fit(X, y).pvalues_
    scaled = PValueSelector().fit(StandardScaler().fit_transform(X), y).pvalues_
    np.testing.assert_allclose(raw, scaled, rtol=1e-10)


@pytest.mark.parametrize("discrete", [["binary_signal"], [2], [False, False, True, False]])
def test_pvalue_selector_discrete_features_by_name_index_or_mask(discrete):
    X, y = _mixed()
    selector = PValueSelector(discrete_features=discrete).fit(X, y)
    assert selector.discrete_mask_.tolist() == [False, False, True, False]
    assert selector.tests_[3] == "mannwhitneyu"


def test_pvalue_selector_auto_rule_counts_distinct_values():
    X, y = _mixed()
    X = X.assign(noise=np.round(X["noise"]).clip(-2, 2))  # 5 levels
    assert PValueSelector().fit(X, y).discrete_mask_[1]
    assert not PValueSelector(max_levels=4).fit(X, y).discrete_mask_[1]
    assert not PValueSelector(discrete_features=False).fit(X, y).discrete_mask_.any()


@pytest.mark.parametrize(
    ("discrete", "message"),
    [(["nope"], "unknown feature"), ([True, False], "length 2"), ([7], "out of range")],
)
def test_pvalue_selector_bad_discrete_features(discrete, message):
    X, y = _mixed()
    with pytest.raises(ValueError, match=message):
        PValueSelector(discrete_features=discrete).fit(X, y)


def test_pvalue_selector_names_need_a_dataframe():
    X, y = _mixed()
    with pytest.raises(ValueError, match="no feature names"):
        PValueSelector(discrete_features=["noise"]).fit(X.to_numpy(), y)


def test_pvalue_selector_corrections():
    X, y = _mixed()
    raw = PValueSelector().fit(X, y).pvalues_
    bonferroni = PValueSelector(correction="bonferroni").fit(X, y)
    np.testing.assert_allclose(bonferroni.adjusted_pvalues_, np.minimum(raw * 4, 1))
    bh = PValueSelector(correction="fdr_bh").fit(X, y)
    np.testing.assert_allclose(bh.adjusted_pvalues_, stats.false_discovery_control(raw))
    np.testing.assert_array_equal(bh.pvalues_, raw)


def test_pvalue_selector_min_features_keeps_smallest_pvalues_on_noise():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 6)), np.repeat([0, 1], 30)
    selector = PValueSelector(alpha=1e-6, min_features=2).fit(X, y)
    assert selector.n_significant_ == 0
    assert set(selector.get_support(indices=True)) == set(np.argsort(selector.pvalues_)[:2])


def test_pvalue_selector_all_filtered_out_names_the_step_and_parameters():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 6)), np.repeat([0, 1], 30)
    with pytest.raises(
        ValueError,
        match=r"PValueSelector \(P-value filter\) kept no feature"
        r".*`alpha`.*`min_features`",
    ):
        PValueSelector(alpha=1e-6, min_features=0).fit(X, y)


def test_pvalue_selector_constant_feature_and_multiclass():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    X = np.column_stack([y + rng.normal(size=60), np.ones(60), rng.integers(0, 2, 60)])
    selector = PValueSelector().fit(X, y)
    assert selector.tests_.tolist() == ["kruskal", "constant", "chi2"]
    assert selector.pvalues_[1] == 1.0
    assert selector.pvalues_[0] == pytest.approx(
        stats.kruskal(*[X[y == k, 0] for k in range(3)]).pvalue
    )


@pytest.mark.parametrize("selector", [PValueSelector(), LassoSelector(alphas=5)])
def test_selectors_reject_a_single_class(selector):
    X, _ = _linear(n=30)
    with pytest.raises(ValueError, match=r"at least two classes.*1 class"):
        selector.fit(X, np.ones(30))


@pytest.mark.parametrize("selector", [PValueSelector(), LassoSelector(alphas=5)])
def test_selectors_are_not_fitted_before_fit_and_leave_input_alone(selector):
    X, y = _mixed()
    with pytest.raises(NotFittedError):
        selector.transform(X)
    before = X.copy()
    out = clone(selector).set_output(transform="pandas").fit_transform(X, y)
    pd.testing.assert_frame_equal(X, before)
    assert isinstance(out, pd.DataFrame)
    assert out.index.equals(X.index)
    assert set(out.columns) <= set(X.columns)


# --------------------------------------------------------------------------- LassoSelector
def test_lasso_selector_matches_lasso_cv_on_the_same_grid_and_folds():
    X, y = _linear()
    folds = list(StratifiedKFold(5).split(X, y))
    selector = LassoSelector(alphas=30, cv=folds, tol=1e-8, max_iter=10_000).fit(X, y)
    reference = LassoCV(alphas=selector.alphas_, cv=folds, tol=1e-8, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(selector.cv_scores_, reference.mse_path_, rtol=1e-4)
    assert selector.alpha_ == pytest.approx(reference.alpha_)
    assert isinstance(selector.estimator_, Lasso)
    np.testing.assert_allclose(selector.coef_, reference.coef_, atol=1e-6)
    assert selector.cv_metric_ == "mse"


def test_lasso_selector_exposes_the_path_and_cv_curve():
    X, y = _linear()
    selector = LassoSelector(alphas=40, eps=1e-2).fit(X, y)
    assert selector.alphas_.shape == (40,)
    assert np.all(np.diff(selector.alphas_) < 0)
    assert selector.alphas_[-1] / selector.alphas_[0] == pytest.approx(1e-2)
    assert selector.coef_path_.shape == (8, 40)
    assert not np.any(selector.coef_path_[:, 0])  # the grid starts where all are zero
    assert np.count_nonzero(selector.coef_path_[:, -1]) > 2
    assert selector.cv_scores_.shape == (40, 5)
    np.testing.assert_allclose(selector.cv_mean_, selector.cv_scores_.mean(1))
    np.testing.assert_allclose(selector.cv_std_, selector.cv_scores_.std(1, ddof=1))
    best = np.argmin(selector.cv_mean_)
    assert selector.alpha_ == selector.alphas_[best]
    k = int(np.flatnonzero(selector.alphas_ == selector.alpha_)[0])
    np.testing.assert_allclose(selector.coef_path_[:, k], selector.coef_, atol=1e-3)
    assert selector.get_support(indices=True)[:2].tolist() == [0, 1]
    assert selector.n_nonzero_ == np.count_nonzero(selector.coef_)


def test_lasso_selector_one_standard_error_rule_is_sparser():
    X, y = _linear(p=20)
    low = LassoSelector(alphas=30).fit(X, y)
    sparse = LassoSelector(alphas=30, selection="1se").fit(X, y)
    assert sparse.alpha_ >= low.alpha_
    best = np.argmin(sparse.cv_mean_)
    limit = sparse.cv_mean_[best] + sparse.cv_std_[best] / np.sqrt(5)
    assert sparse.cv_mean_[sparse.alphas_ == sparse.alpha_][0] <= limit
    assert sparse.get_support().sum() <= low.get_support().sum()


def test_lasso_one_se_uses_glmnets_standard_error_and_seeded_shuffled_folds():
    X, y = _linear(p=20)
    sparse = LassoSelector(alphas=30, selection="1se").fit(X, y)
    # glmnet: cvsd = sqrt(sum((cvraw - cvm)^2) / (N * (N - 1)))
    raw = sparse.cv_scores_
    cvsd = np.sqrt(((raw - raw.mean(1, keepdims=True)) ** 2).sum(1) / (5 * 4))
    np.testing.assert_allclose(sparse.cv_std_ / np.sqrt(5), cvsd)
    a = LassoSelector(alphas=30, random_state=0).fit(X, y)
    b = LassoSelector(alphas=30, random_state=0).fit(X, y)
    c = LassoSelector(alphas=30, random_state=1).fit(X, y)
    ordered = LassoSelector(alphas=30).fit(X, y)
    np.testing.assert_array_equal(a.cv_scores_, b.cv_scores_)
    assert not np.allclose(a.cv_scores_, c.cv_scores_)
    assert not np.allclose(a.cv_scores_, ordered.cv_scores_)


def test_classifier_selector_shuffles_its_folds_with_random_state():
    from thyronet import ClassifierSelector

    X, y = _linear(p=5)
    scores = [
        ClassifierSelector(["naive_bayes"], cv=3, random_state=seed).fit(X, y).scores_
        for seed in (0, 0, 1)
    ]
    assert scores[0]["split0_score"].iloc[0] == scores[1]["split0_score"].iloc[0]
    assert scores[0]["split0_score"].iloc[0] != scores[2]["split0_score"].iloc[0]


def test_lasso_selector_logistic_method():
    X, y = _linear()
    selector = LassoSelector("logistic", alphas=15).fit(X, y)
    assert isinstance(selector.estimator_, LogisticRegression)
    assert selector.estimator_.l1_ratio == 1.0
    assert selector.C_ == pytest.approx(1 / (selector.alpha_ * len(X)))
    assert selector.estimator_.C == pytest.approx(selector.C_)
    assert selector.cv_metric_ == "log_loss"
    assert selector.coef_.shape == (8,)
    assert selector.get_support(indices=True)[:2].tolist() == [0, 1]
    assert np.all(selector.cv_mean_ > 0)


def test_lasso_selector_multiclass_uses_a_multitask_lasso():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 5))
    y = np.digitize(X[:, 2] + 0.3 * rng.normal(size=150), [-0.5, 0.5])
    selector = LassoSelector(alphas=10).fit(X, y)
    assert isinstance(selector.estimator_, MultiTaskLasso)
    assert selector.coef_.shape == (3, 5)
    assert selector.coef_path_.shape == (3, 5, 10)
    assert selector.get_support()[2]


def test_lasso_selector_max_features_keeps_largest_coefficients():
    X, y = _linear(p=12)
    full = LassoSelector(alphas=20).fit(X, y)
    top = LassoSelector(alphas=20, max_features=2).fit(X, y)
    assert top.get_support().sum() == 2
    kept = np.argsort(-np.abs(full.coef_))[:2]
    assert set(top.get_support(indices=True)) == set(kept)


def test_lasso_selector_min_features_keeps_the_first_feature_to_enter_the_path():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(80, 10)), np.repeat([0, 1], 40)
    corr = np.abs((X - X.mean(0)).T @ (y - y.mean())) / len(X)
    alpha_max = corr.max()  # the smallest alpha at which every coefficient is zero
    # 1se picks the larger alpha (all zero); the second one lets one feature in.
    selector = LassoSelector(
        alphas=[2 * alpha_max, 0.97 * alpha_max], selection="1se", min_features=1
    ).fit(X, y)
    assert selector.alpha_ == pytest.approx(2 * alpha_max)
    assert selector.n_nonzero_ == 0
    assert np.count_nonzero(selector.coef_path_[:, 1]) == 1
    assert selector.get_support(indices=True).tolist() == [int(np.argmax(corr))]


def test_lasso_selector_all_filtered_out_names_the_step_and_parameters():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 10)), np.repeat([0, 1], 40)
    with pytest.raises(
        ValueError,
        match=r"LassoSelector \(LASSO step.*kept no feature"
        r".*`alphas`.*`min_features`",
    ):
        LassoSelector(alphas=[100.0], min_features=0).fit(X, y)


def test_lasso_selector_rejects_bad_alphas():
    X, y = _linear()
    with pytest.raises(ValueError, match="positive"):
        LassoSelector(alphas=[0.1, -1.0]).fit(X, y)


def test_selectors_lower_folds_to_the_smallest_class():
    X, y = _linear(n=40)
    y = np.r_[np.ones(3), np.zeros(37)].astype(int)
    assert LassoSelector(alphas=5).fit(X, y).cv_scores_.shape == (5, 3)
    with pytest.raises(ValueError, match="only 1 sample"):
        LassoSelector(alphas=5).fit(X, np.r_[1, np.zeros(39)].astype(int))


# --------------------------------------------------------------------------- no leakage
def test_no_leakage_on_pure_noise():
    """Selecting inside CV gives chance AUC on noise; selecting on all data first does not."""
    honest, leaky = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        X, y = rng.normal(size=(200, 300)), np.repeat([0, 1], 100)
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        model = make_pipeline(
            StandardScaler(), PValueSelector(), LassoSelector(alphas=20), ClassifierSelector(cv=3)
        )
        honest.append(cross_val_score(model, X, y, cv=cv, scoring="roc_auc").mean())
        selected = make_pipeline(
            StandardScaler(), PValueSelector(), LassoSelector(alphas=20)
        ).fit_transform(X, y)
        leaky.append(
            cross_val_score(ClassifierSelector(cv=3), selected, y, cv=cv, scoring="roc_auc").mean()
        )
    assert all(abs(a - 0.5) <= 0.1 for a in honest), honest
    assert abs(np.mean(honest) - 0.5) <= 0.05, honest
    assert np.mean(leaky) > 0.7, leaky
    assert min(leaky) > max(honest) + 0.1, (honest, leaky)


def test_lasso_selector_cv_curve_is_lasso_cv_mse_path():
    from sklearn.linear_model import LassoCV
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 5))
    y = (X[:, 0] + rng.normal(size=60) > 0).astype(int)
    selector = LassoSelector(alphas=20, cv=3).fit(X, y)
    folds = list(StratifiedKFold(3).split(X, y))
    reference = LassoCV(alphas=selector.alphas_, cv=folds).fit(X, y.astype(float))
    np.testing.assert_array_equal(selector.cv_scores_, reference.mse_path_)
    assert LassoSelector().verbose == 0

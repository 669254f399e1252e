"""ClassifierSelector: both protocols, delegation, plugins and bad candidates."""

import importlib
import sys
import textwrap
import types

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from thyronet import ClassifierSelector, LassoSelector, PValueSelector
from thyronet.plugins import (
    DISABLE_ENV,
    PluginWarning,
    UnknownEntryError,
    build_registry,
    get_plugin_manager,
    reset_plugins,
)

PAPER = ["logistic_regression", "lightgbm", "naive_bayes"]


@pytest.fixture
def data():
    X, y = make_classification(n_samples=200, n_features=6, n_informative=3, random_state=0)
    return X[:140], y[:140], X[140:], y[140:]


def test_default_candidates_are_the_papers_three_registered_classifiers(data):
    X, y, _, _ = data
    model = ClassifierSelector().fit(X, y)
    assert model.scores_.index.tolist() == PAPER
    assert model.selected_by_ == "cv"
    best = model.scores_["mean_score"].idxmax()
    assert model.best_name_ == best
    assert model.scores_.loc[best, "rank"] == 1
    assert sorted(model.scores_["rank"]) == [1, 2, 3]
    assert model.best_score_ == model.scores_.loc[best, "mean_score"]
    np.testing.assert_array_equal(model.classes_, [0, 1])
    np.testing.assert_allclose(model.predict_proba(X), model.best_estimator_.predict_proba(X))
    np.testing.assert_array_equal(model.predict(X), model.best_estimator_.predict(X))


def test_cv_scores_are_stratified_cv_auc_of_each_candidate(data):
    X, y, _, _ = data
    model = ClassifierSelector(cv=4).fit(X, y)
    for name, factory in [
        ("logistic_regression", lambda: LogisticRegression(max_iter=1000)),
        ("naive_bayes", GaussianNB),
    ]:
        expected = cross_val_score(factory(), X, y, cv=StratifiedKFold(4), scoring="roc_auc")
        got = model.scores_.loc[name, [f"split{i}_score" for i in range(4)]].to_numpy(float)
        np.testing.assert_allclose(got, expected)
        assert model.scores_.loc[name, "mean_score"] == pytest.approx(expected.mean())
        assert model.scores_.loc[name, "std_score"] == pytest.approx(expected.std())


def test_winner_is_refitted_on_all_training_data(data):
    X, y, _, _ = data
    model = ClassifierSelector(candidates={"lr": LogisticRegression(C=0.5)}).fit(X, y)
    reference = LogisticRegression(C=0.5).fit(X, y)
    np.testing.assert_allclose(model.best_estimator_.coef_, reference.coef_)
    np.testing.assert_allclose(model.decision_function(X), reference.decision_function(X))


def test_validation_protocol_scores_on_the_validation_set(data):
    X, y, X_val, y_val = data
    model = ClassifierSelector().fit(X, y, X_val=X_val, y_val=y_val)
    assert model.selected_by_ == "validation"
    assert model.scores_["std_score"].isna().all()
    assert not any(c.startswith("split") for c in model.scores_.columns)
    nb = GaussianNB().fit(X, y)
    assert model.scores_.loc["naive_bayes", "mean_score"] == pytest.approx(
        roc_auc_score(y_val, nb.predict_proba(X_val)[:, 1])
    )
    assert model.best_name_ == model.scores_["mean_score"].idxmax()
    # The winner stays fitted on the training data only.
    winner = clone(model.best_estimator_).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X_val), winner.predict_proba(X_val))


def test_validation_set_is_transformed_by_a_pipeline_with_metadata_routing(data):
    X, y, X_val, y_val = data

    def steps():
        return [
            ("scale", StandardScaler()),
            ("pvalue", PValueSelector()),
            ("lasso", LassoSelector(alphas=10)),
        ]

    with sklearn.config_context(enable_metadata_routing=True):
        classify = ClassifierSelector().set_fit_request(X_val=True, y_val=True)
        model = Pipeline([*steps(), ("classify", classify)], transform_input=["X_val"])
        model.fit(X, y, X_val=X_val, y_val=y_val)
    features = Pipeline(steps()).fit(X, y)
    manual = ClassifierSelector().fit(
        features.transform(X), y, X_val=features.transform(X_val), y_val=y_val
    )
    assert model[-1].selected_by_ == "validation"
    pd.testing.assert_frame_equal(
        model[-1].scores_.drop(columns="fit_time"), manual.scores_.drop(columns="fit_time")
    )


def test_untransformed_validation_set_is_rejected_with_a_hint(data):
    X, y, X_val, y_val = data
    with pytest.raises(ValueError, match=r"X_val has 6 features but X has 2.*transform_input"):
        ClassifierSelector().fit(X[:, :2], y, X_val=X_val, y_val=y_val)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"X_val": "X"}, "both X_val and y_val"),
        ({"X_val": "X", "y_val": "ones"}, "single class"),
        ({"X_val": "X", "y_val": "short"}, "one label per row"),
        ({"X_val": "X", "y_val": "unknown"}, r"labels \[7\] not seen"),
    ],
)
def test_bad_validation_sets(data, kwargs, message):
    X, y, X_val, y_val = data
    values = {
        "X": X_val,
        "ones": np.ones(len(y_val)),
        "short": y_val[:5],
        "unknown": np.r_[7, y_val[1:]],
    }
    with pytest.raises(ValueError, match=message):
        ClassifierSelector().fit(X, y, **{k: values[v] for k, v in kwargs.items()})


def test_candidates_as_names_pairs_and_factories(data):
    X, y, _, _ = data
    model = ClassifierSelector(
        ["naive_bayes", ("tree", DecisionTreeClassifier(max_depth=2))], cv=3
    ).fit(X, y)
    assert model.scores_.index.tolist() == ["naive_bayes", "tree"]
    model = ClassifierSelector({"nb": GaussianNB, "lr": "logistic_regression"}, cv=3).fit(X, y)
    assert model.scores_.index.tolist() == ["nb", "lr"]


def test_candidate_without_predict_proba_is_rejected(data):
    X, y, _, _ = data
    with pytest.raises(TypeError, match=r"candidate 'svm' \(LinearSVC\) has no predict_proba"):
        ClassifierSelector({"svm": LinearSVC()}).fit(X, y)


@pytest.mark.parametrize(
    ("candidates", "error", "message"),
    [
        ({"reg": LinearRegression()}, TypeError, "not a scikit-learn classifier"),
        ({"x": 3}, TypeError, "must be a classifier, a factory"),
        ([3], TypeError, "registered names or"),
        ({}, ValueError, "at least one candidate"),
        (["naive_bayes", "naive_bayes"], ValueError, "given twice"),
    ],
)
def test_bad_candidates(data, candidates, error, message):
    X, y, _, _ = data
    with pytest.raises(error, match=message):
        ClassifierSelector(candidates).fit(X, y)


def test_unknown_registered_name_lists_the_registered_ones(data):
    X, y, _, _ = data
    with pytest.raises(UnknownEntryError, match="lightgbm, logistic_regression, naive_bayes"):
        ClassifierSelector(["xgboost"]).fit(X, y)


def test_single_class_and_continuous_targets_are_rejected(data):
    X, _, _, _ = data
    with pytest.raises(ValueError, match="1 class"):
        ClassifierSelector().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="Unknown label type"):
        ClassifierSelector().fit(X, np.linspace(0, 1, len(X)))


def test_not_fitted_before_fit(data):
    X, _, _, _ = data
    with pytest.raises(NotFittedError):
        ClassifierSelector().predict_proba(X)


def test_ties_go_to_the_earlier_candidate_and_delegation_follows_the_winner(data):
    X, y, _, _ = data
    model = ClassifierSelector({"a": GaussianNB(), "b": GaussianNB()}, cv=3).fit(X, y)
    assert model.best_name_ == "a"
    assert model.scores_["rank"].tolist() == [1, 2]
    assert not hasattr(model, "decision_function")  # GaussianNB has none
    assert hasattr(ClassifierSelector({"lr": LogisticRegression()}).fit(X, y), "decision_function")


def test_lightgbm_default_is_quiet_and_deterministic(data, capfd):
    X, y, _, _ = data
    first = ClassifierSelector(["lightgbm"], cv=3).fit(X, y)
    second = ClassifierSelector(["lightgbm"], cv=3).fit(X, y)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    params = first.best_estimator_.get_params()
    assert params["verbose"] == -1 and params["deterministic"] and params["random_state"] == 0


def test_string_labels_and_multiclass():
    X, y = make_classification(
        n_samples=150, n_features=5, n_informative=3, n_classes=3, random_state=0
    )
    labels = np.array(["low", "mid", "high"])[y]
    model = ClassifierSelector(cv=3).fit(X, labels)
    assert model.classes_.tolist() == ["high", "low", "mid"]
    assert model.predict_proba(X).shape == (150, 3)
    assert set(model.predict(X)) <= set(labels)
    nb = cross_val_score(GaussianNB(), X, labels, cv=StratifiedKFold(3), scoring="roc_auc_ovr")
    assert model.scores_.loc["naive_bayes", "mean_score"] == pytest.approx(nb.mean())


def test_folds_are_lowered_to_the_smallest_class(data):
    X, y, _, _ = data
    y = np.zeros(len(X), dtype=int)
    y[:3] = 1
    model = ClassifierSelector(["naive_bayes"]).fit(X, y)
    assert [c for c in model.scores_.columns if c.startswith("split")] == [
        "split0_score",
        "split1_score",
        "split2_score",
    ]


def test_pandas_pipeline_passes_feature_names_to_the_winner(data):
    X, y, _, _ = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    before = frame.copy()
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("pvalue", PValueSelector()),
            ("lasso", LassoSelector(alphas=10)),
            ("classify", ClassifierSelector()),
        ]
    ).set_output(transform="pandas")
    model.fit(frame, y)
    names = model[:-1].get_feature_names_out()
    assert list(model[-1].best_estimator_.feature_names_in_) == list(names)
    assert list(model[-1].feature_names_in_) == list(names)
    pd.testing.assert_frame_equal(frame, before)
    assert roc_auc_score(y, model.predict_proba(frame)[:, 1]) > 0.8


# --------------------------------------------------------------------------- plugins
def test_blocking_the_builtin_plugin_leaves_no_default_candidates(data, monkeypatch):
    X, y, _, _ = data
    monkeypatch.setenv(DISABLE_ENV, "thyronet._builtins.classifiers")
    reset_plugins()
    with pytest.raises(ValueError, match="at least one candidate"):
        ClassifierSelector().fit(X, y)


PLUGIN = """
    from sklearn.tree import DecisionTreeClassifier
    from thyronet.hookspecs import hookimpl

    def shallow_tree():
        return DecisionTreeClassifier(max_depth=2, random_state=0)

    @hookimpl
    def thyronet_register_classifiers(register):
        register("shallow_tree", shallow_tree)
"""


def test_a_plugin_adds_a_default_candidate(data, tmp_path, monkeypatch):
    """An installed distribution with a ``thyronet`` entry point extends the defaults."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "tree_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "tree_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tree-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[thyronet]\ntree_plugin = tree_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.setattr(sys, "_thyronet_called_from_test", False)
    reset_plugins()
    X, y, _, _ = data
    model = ClassifierSelector(cv=3).fit(X, y)
    assert model.scores_.index.tolist()[:3] == PAPER
    assert "shallow_tree" in model.scores_.index


def test_registry_rejects_an_estimator_instance_instead_of_a_factory():
    from thyronet.hookspecs import hookimpl

    @hookimpl
    def thyronet_register_classifiers(register):
        register("instance", GaussianNB())

    plugin = types.ModuleType("bad_classifier_plugin")
    plugin.thyronet_register_classifiers = thyronet_register_classifiers
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin, name="bad_classifier_plugin")
    with pytest.warns(PluginWarning, match="bad_classifier_plugin.*must be a Callable"):
        registry = build_registry("classifiers", pm)
    assert "instance" not in registry
    assert set(PAPER) <= set(registry)


def test_verbose_defaults_to_zero_and_public_path_is_kept():
    from thyronet.classifier_selection import ClassifierSelector as FromOldPath

    assert FromOldPath is ClassifierSelector
    assert ClassifierSelector().verbose == 0
    assert ClassifierSelector.__module__ == "thyronet.classifier_selection"

"""The five models: builders, cohort input, feature names, caching in grid searches."""

import numpy as np
import pandas as pd
import pytest
from joblib import Memory
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV

from thyronet import SkorchCNN
from thyronet.datasets import CohortError, make_ptmc_cohort
from thyronet.pipelines import (
    make_clinical_model,
    make_combined_model,
    make_dl_model,
    make_late_fusion_model,
)

TINY = {
    "image_size": 32,
    "backbone": "test_resnet",
    "max_epochs": 1,
    "batch_size": 16,
    "verbose": 0,
    "random_state": 0,
    "device": "cpu",
    "augment": False,
    "early_stopping": False,
    "validation_fraction": None,
}


@pytest.fixture(scope="module")
def cohort():
    return make_ptmc_cohort(n_patients=72, image_size=32, random_state=0)


def _fast(model):
    """Lighter downstream settings for tests."""
    return model.set_params(lasso__alphas=10, classify__cv=3)


def test_late_fusion_averages_one_cnn_per_view(cohort):
    model = make_late_fusion_model(**TINY).fit(cohort, cohort["clnm"])
    proba = model.predict_proba(cohort)[:, 1]
    views = {name: est.predict_proba(cohort)[:, 1] for name, est in model.named_estimators_.items()}
    assert [m["fuse"].strategy for m in model.named_estimators_.values()] == [
        "longitudinal",
        "transverse",
    ]
    np.testing.assert_allclose(proba, (views["longitudinal"] + views["transverse"]) / 2)
    alone = make_dl_model("longitudinal", **TINY).fit(cohort, cohort["clnm"])
    np.testing.assert_allclose(views["longitudinal"], alone.predict_proba(cohort)[:, 1])
    weighted = clone(model).set_params(weights=[1, 0]).fit(cohort, cohort["clnm"])
    np.testing.assert_allclose(weighted.predict_proba(cohort)[:, 1], views["longitudinal"])
    with pytest.raises(TypeError, match="fixes each view's strategy"):
        make_late_fusion_model(strategy="stack")


def test_dl_models_fix_the_view(cohort):
    assert make_dl_model()["fuse"].strategy == "stack"
    assert make_dl_model("fused", strategy="stack3")["fuse"].strategy == "stack3"
    assert make_dl_model("transverse")["fuse"].strategy == "transverse"
    with pytest.raises(ValueError, match="fixes the fusion strategy"):
        make_dl_model("longitudinal", strategy="stack")
    with pytest.raises(ValueError, match="view must be one of"):
        make_dl_model("sagittal")
    model = make_dl_model("longitudinal", **TINY).fit(cohort, cohort["clnm"])
    assert model["cnn"].n_features_in_ == 1
    assert model.predict_proba(cohort).shape == (len(cohort), 2)


def test_builder_parameters_are_routed_and_checked():
    model = make_dl_model(image_size=48, lr=1e-3, batch_size=8, verbose=0, optimizer__momentum=0.5)
    assert model["fuse"].image_size == 48 and model["cnn"].lr == 1e-3
    assert model["fuse"].batch_size == 8 and model["cnn"].batch_size == 8  # shared names
    assert model["cnn"].optimizer_kwargs == {"momentum": 0.5}
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['learning_rate'\]"):
        make_combined_model(learning_rate=0.1)


def test_clinical_model_on_the_cohort(cohort):
    model = _fast(make_clinical_model()).set_output(transform="pandas")
    model.fit(cohort, cohort["clnm"])
    names = model.get_feature_names_out()
    assert len(names) >= 1
    assert set(names) <= set(model["clinical"].get_feature_names_out())
    assert list(model[-1].feature_names_in_) == list(names)


def test_combined_model_takes_the_cohort_and_names_its_features(cohort):
    model = _fast(make_combined_model(n_components=8, **TINY)).set_output(transform="pandas")
    extra = cohort.assign(unrelated=1.0)
    model.fit(extra, cohort["clnm"])
    features = model["features"].get_feature_names_out().tolist()
    assert features[:8] == [f"pca{i}" for i in range(8)]
    assert (
        features[8:]
        == model["features"].named_transformers_["clinical"].get_feature_names_out().tolist()
    )
    final = model.get_feature_names_out().tolist()
    assert final == model[:-1].get_feature_names_out().tolist()
    assert set(final) <= set(features)
    table = model[:-1].transform(cohort.drop(columns=["oracle_risk", "cohort"]))
    assert isinstance(table, pd.DataFrame) and table.columns.tolist() == final
    proba = model.predict_proba(cohort)
    assert proba.shape == (len(cohort), 2) and np.all((proba >= 0) & (proba <= 1))


def test_combined_model_keeps_the_row_index_of_a_cohort_subset(cohort):
    """The image branch passes through index-less arrays; its features must still line
    up with the clinical ones when the cohort's index is not 0..n-1."""
    subset = cohort.iloc[::2]  # index 0, 2, 4, ...
    model = _fast(make_combined_model(n_components=8, **TINY)).set_output(transform="pandas")
    model.fit(subset, subset["clnm"])
    table = model["features"].transform(subset)
    assert table.index.equals(subset.index) and len(table) == len(subset)
    assert table["pca0"].notna().all()
    reset = model["features"].transform(subset.reset_index(drop=True))
    np.testing.assert_array_equal(table.to_numpy(), reset.to_numpy())
    assert model.predict_proba(subset).shape == (len(subset), 2)


def test_combined_model_lists_missing_columns(cohort):
    model = make_combined_model(n_components=8, **TINY)
    with pytest.raises(CohortError, match=r"missing column\(s\) \['ete', 'margin'\]"):
        model.fit(cohort.drop(columns=["ete", "margin"]), cohort["clnm"])
    with pytest.raises(CohortError, match=r"missing column\(s\) \['transverse'\]"):
        model.fit(cohort.drop(columns=["transverse"]), cohort["clnm"])


def test_combined_model_reuses_a_fitted_dl_model(cohort):
    y = cohort["clnm"]
    dl = make_dl_model(**TINY).fit(cohort, y)
    model = _fast(make_combined_model(dl, n_components=8))
    extract = model["features"].transformers[0][1]["extract"]
    assert isinstance(extract, FrozenEstimator)
    assert extract.estimator.cnn_ is dl["cnn"]
    assert clone(model)["features"].transformers[0][1]["extract"] is extract
    weights = {k: v.clone() for k, v in dl["cnn"].net_.module_.state_dict().items()}
    model.fit(cohort, y)
    after = dl["cnn"].net_.module_.state_dict()
    assert all(np.array_equal(weights[k].numpy(), after[k].numpy()) for k in weights)
    features = (
        model["features"]
        .transformers_[0][1]["extract"]
        .transform(model["features"].transformers_[0][1]["fuse"].transform(cohort))
    )
    reference = dl["cnn"].net_.module_.eval().forward_features
    import torch

    with torch.inference_mode():
        expected = reference(torch.as_tensor(dl["fuse"].transform(cohort))).numpy()
    # the extractor may run under bf16 autocast ("auto" precision): ~3 significant digits
    np.testing.assert_allclose(features, expected, rtol=2e-2, atol=2e-2)
    with pytest.raises(TypeError, match="cannot be combined"):
        make_combined_model(dl, lr=0.1)
    with pytest.raises(TypeError, match="fitted make_dl_model"):
        make_combined_model("resnet")


class _CountingFits:
    """Counts SkorchCNN trainings in this process (the real fit still runs)."""

    def __init__(self, monkeypatch):
        self.calls = []
        original = SkorchCNN.fit

        def fit(cnn, X, y, *args, **kwargs):
            self.calls.append(cnn.lr)
            return original(cnn, X, y, *args, **kwargs)

        monkeypatch.setattr(SkorchCNN, "fit", fit)


GRID = {"features__dl__extract__cnn__lr": [1e-3, 3e-3], "lasso__min_features": [1, 4, 8]}


def _search(memory, n_jobs=1):
    model = _fast(make_combined_model(n_components=8, memory=memory, **TINY))
    model.set_params(pvalue__min_features=10)  # enough inputs for LASSO's min_features
    return GridSearchCV(model, GRID, cv=3, scoring="roc_auc", refit=False, n_jobs=n_jobs)


def test_grid_search_caching_trains_the_cnn_once_per_setting_and_fold(
    cohort, tmp_path, monkeypatch
):
    """2 CNN settings x 3 downstream settings x 3 folds: 2 x 3 trainings, not 6 x 3."""
    counter = _CountingFits(monkeypatch)
    serial = _search(Memory(tmp_path / "serial", verbose=0)).fit(cohort, cohort["clnm"])
    assert len(counter.calls) == 2 * 3
    assert sorted(counter.calls) == [1e-3] * 3 + [3e-3] * 3
    scores = serial.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    # The downstream setting changes the result, so the cache did not mix candidates up.
    assert len(np.unique(np.round(scores, 10))) > 2


@pytest.mark.slow
def test_grid_search_with_cache_in_two_processes(cohort, tmp_path):
    """Two loky worker processes share a fresh on-disk cache and give the serial scores
    exactly: ``num_threads=1`` trains the CNN on one torch thread in the test process
    and in the workers alike (loky starts them with fewer threads), and the feature
    path is pinned (``precision="auto"`` measures, and each process may pick another)."""

    def search(memory, n_jobs=1):
        found = _search(memory, n_jobs)
        return found.set_params(
            estimator__features__dl__extract__cnn__num_threads=1,
            estimator__features__dl__extract__precision="fp32",
            estimator__features__dl__extract__channels_last=False,
        )

    serial = search(Memory(tmp_path / "serial", verbose=0)).fit(cohort, cohort["clnm"])
    parallel = search(str(tmp_path / "parallel"), n_jobs=2).fit(cohort, cohort["clnm"])
    for key in ("mean_test_score", *(f"split{i}_test_score" for i in range(3))):
        np.testing.assert_array_equal(parallel.cv_results_[key], serial.cv_results_[key])
    assert len(set(serial.cv_results_["mean_test_score"])) > 1
    assert any((tmp_path / "parallel").rglob("output.pkl"))


@pytest.mark.slow
def test_grid_search_without_cache_trains_the_cnn_for_every_candidate(cohort, monkeypatch):
    counter = _CountingFits(monkeypatch)
    _search(None).fit(cohort, cohort["clnm"])
    assert len(counter.calls) == 6 * 3


def test_combined_model_cross_fits_its_deep_features(cohort, tmp_path, monkeypatch):
    y = cohort["clnm"]
    model = _fast(make_combined_model(n_components=8, cv=2, **TINY))
    assert model.get_params()["features__dl__extract__cv"] == 2
    counter = _CountingFits(monkeypatch)
    memory = Memory(tmp_path / "cache", verbose=0)
    cached = _fast(make_combined_model(n_components=8, cv=2, memory=memory, **TINY))
    cached.fit(cohort, y)
    assert len(counter.calls) == 1 + 2  # the all-rows CNN and one per fold
    clone(cached).fit(cohort, y)
    assert len(counter.calls) == 3  # the cache holds the cross-fitted features
    assert cached.predict_proba(cohort).shape == (len(cohort), 2)


def test_combined_model_cross_fits_around_a_fitted_dl_model(cohort, monkeypatch):
    y = cohort["clnm"]
    dl = make_dl_model(**TINY).fit(cohort, y)
    model = _fast(make_combined_model(dl, n_components=8, cv=2))
    counter = _CountingFits(monkeypatch)
    model.fit(cohort, y)
    assert len(counter.calls) == 2  # fold CNNs only: DL_F's CNN serves prediction
    extract = model["features"].transformers_[0][1]["extract"]
    assert extract.cnn_ is dl["cnn"]

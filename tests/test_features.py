"""DeepFeatureExtractor: penultimate features of a SkorchCNN as a transformer."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from _images import make_images, tiny_cnn
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from thyronet import DeepFeatureExtractor
from thyronet.cnn import _paths, candidate_paths, clear_path_cache, path_cache
from thyronet.features import fast_bf16_available


@pytest.fixture(scope="module")
def data():
    return make_images(n=24)


@pytest.fixture(scope="module")
def fitted_cnn(data):
    X, y = data
    return tiny_cnn().fit(X, y)


def reference_features(cnn, X):
    """fp32, default memory layout, straight through the fitted module."""
    module = cnn.net_.module_.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(X)).to(cnn.device_)
        return module.forward_features(x.contiguous()).float().cpu().numpy()


def test_a_frozen_cnn_is_used_as_fitted(fitted_cnn, data):
    X, _ = data
    extractor = DeepFeatureExtractor(FrozenEstimator(fitted_cnn), precision="fp32", batch_size=5)
    features = extractor.fit(X).transform(X)
    assert extractor.cnn_ is fitted_cnn
    assert features.dtype == np.float32 and features.shape == (len(X), 96)
    np.testing.assert_allclose(features, reference_features(fitted_cnn, X), rtol=1e-4, atol=1e-5)
    assert extractor.n_features_in_ == 2 and extractor.feature_dim_ == 96
    assert extractor.precision_ == "fp32"


def test_clone_of_an_extractor_of_a_frozen_cnn_keeps_it_fitted(fitted_cnn, data):
    X, y = data
    extractor = DeepFeatureExtractor(FrozenEstimator(fitted_cnn), precision="fp32")
    copy = clone(extractor)
    assert copy.cnn.estimator is fitted_cnn and not hasattr(copy, "cnn_")
    np.testing.assert_array_equal(copy.fit(X).transform(X), extractor.fit(X).transform(X))
    # so it works inside cross-validation, like the paper's fixed DL_F features
    from sklearn.model_selection import cross_val_score

    model = Pipeline([("extract", extractor), ("classify", LogisticRegression())])
    assert np.isfinite(cross_val_score(model, X, y, cv=2, scoring="roc_auc")).all()
    assert not hasattr(clone(DeepFeatureExtractor(fitted_cnn)).cnn, "net_")


def test_fit_fine_tunes_a_clone(data):
    X, y = data
    cnn = tiny_cnn()
    extractor = DeepFeatureExtractor(cnn, batch_size=8).fit(X, y)
    assert not hasattr(cnn, "net_")  # the given estimator is untouched
    assert extractor.cnn_ is not cnn and extractor.cnn_.n_epochs_ == 1
    assert extractor.fit_transform(X, y).shape == (len(X), 96)


def test_fit_passes_the_validation_set_to_the_cnn(data):
    X, y = data
    X_val, y_val = make_images(n=8, seed=5)
    extractor = DeepFeatureExtractor(tiny_cnn(max_epochs=2)).fit(X, y, X_val=X_val, y_val=y_val)
    batches = extractor.cnn_.net_.history[-1, "batches"]
    assert sum(b.get("valid_batch_size", 0) for b in batches) == 8


def test_fine_tune_false_uses_the_pretrained_backbone_as_is(data, tmp_path):
    X, _ = data
    torch.manual_seed(3)
    source = timm.create_model("test_resnet", in_chans=3)
    torch.save(source.state_dict(), tmp_path / "rgb.pth")
    cnn = tiny_cnn(pretrained=tmp_path / "rgb.pth")
    extractor = DeepFeatureExtractor(cnn, fine_tune=False, precision="fp32").fit(X)  # no y
    features = extractor.transform(X)
    # the same as timm's model built from that file, normalised like the backbone
    expected_model = timm.create_model(
        "test_resnet",
        in_chans=2,
        num_classes=0,
        pretrained=True,
        pretrained_cfg_overlay={"file": str(tmp_path / "rgb.pth")},
    ).eval()
    with torch.no_grad():
        expected = expected_model((torch.from_numpy(X) - 0.5) / 0.5).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    assert extractor.cnn_.n_epochs_ == 0


def test_feature_names_and_pandas_output(fitted_cnn, data):
    X, _ = data
    extractor = DeepFeatureExtractor(FrozenEstimator(fitted_cnn)).fit(X)
    names = extractor.get_feature_names_out()
    assert names[0] == "dl_0000" and names[-1] == "dl_0095" and len(names) == 96
    frame = clone(extractor).set_output(transform="pandas").fit(X).transform(X)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(names)
    assert frame.shape == (len(X), 96)


def test_bf16_fast_path_is_faithful(fitted_cnn, data):
    X, _ = data
    fp32 = DeepFeatureExtractor(FrozenEstimator(fitted_cnn), precision="fp32").fit(X).transform(X)
    fast = DeepFeatureExtractor(FrozenEstimator(fitted_cnn), precision="bf16").fit(X).transform(X)
    cosine = (fast * fp32).sum(1) / np.linalg.norm(fast, axis=1) / np.linalg.norm(fp32, axis=1)
    assert cosine.mean() >= 0.99
    assert not np.array_equal(fast, fp32)  # bf16 really ran


def _cosine(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture
def measure_small(monkeypatch):
    """Measure-and-pick on the small test inputs, with an empty cache before and after."""
    monkeypatch.setattr(_paths, "MIN_IMAGES_TO_PICK", 1)
    clear_path_cache()
    yield
    clear_path_cache()


def test_auto_path_is_measured_once_and_cached(fitted_cnn, data, measure_small):
    X, _ = data
    extractor = DeepFeatureExtractor(FrozenEstimator(fitted_cnn)).fit(X)
    path = extractor.path_
    assert path.source == "measured" and extractor.precision_ == path.precision
    assert sorted(path.images_per_s) == ["bf16 channels-last", "fp32 NCHW", "fp32 channels-last"]
    assert path.images_per_s[path.name] == max(path.images_per_s.values())
    again = clone(extractor).fit(X[:5])  # same key: the cache answers, even for 5 images
    assert again.path_.source == "cached" and again.path_.name == path.name
    assert len(path_cache()) == 1
    reference = reference_features(fitted_cnn, X)
    assert _cosine(extractor.transform(X), reference).min() >= 0.999
    # a cnn whose module is channels-last keeps that layout after an NCHW extraction
    weight = fitted_cnn.net_.module_.model.conv1[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)


def test_small_input_is_not_measured(fitted_cnn, data):
    X, _ = data
    clear_path_cache()
    extractor = DeepFeatureExtractor(FrozenEstimator(fitted_cnn)).fit(X)
    assert str(extractor.path_) == "fp32 channels-last (default)"
    assert extractor.precision_ == "fp32" and not path_cache()
    fixed = DeepFeatureExtractor(FrozenEstimator(fitted_cnn), precision="bf16", channels_last=False)
    assert str(fixed.fit(X).path_) == "bf16 NCHW (set)"
    # the static default is fp32 on CPUs whatever the CPU flags say
    assert fast_bf16_available("meta") is False


def test_the_chosen_path_is_the_one_that_runs(fitted_cnn, data, measure_small, monkeypatch):
    X, _ = data

    def bf16_wins(module, forward, probe, candidates):
        return {p.name: 2.0 if p.precision == "bf16" else 1.0 for p in candidates}

    monkeypatch.setattr(_paths, "_measure", bf16_wins)
    extractor = DeepFeatureExtractor(FrozenEstimator(fitted_cnn)).fit(X)
    assert extractor.path_.name == "bf16 channels-last"
    fp32 = DeepFeatureExtractor(FrozenEstimator(fitted_cnn), precision="fp32").fit(X)
    fast, exact = extractor.transform(X), fp32.transform(X)
    assert not np.array_equal(fast, exact)  # bf16 really ran
    assert _cosine(fast, exact).min() >= 0.999


@pytest.mark.parametrize("path", candidate_paths("auto", "auto", "cpu"), ids=str)
def test_every_candidate_path_gives_the_same_features(fitted_cnn, data, path):
    """cosine >= 0.999 to fp32, and the same downstream AUC within 0.01."""
    X, y = data
    extractor = DeepFeatureExtractor(
        FrozenEstimator(fitted_cnn), precision=path.precision, channels_last=path.channels_last
    ).fit(X)
    features, reference = extractor.transform(X), reference_features(fitted_cnn, X)
    assert _cosine(features, reference).min() >= 0.999
    train, test = np.arange(len(X)) % 3 != 0, np.arange(len(X)) % 3 == 0

    def auc(F):
        model = LogisticRegression(max_iter=2000).fit(F[train], y[train])
        return roc_auc_score(y[test], model.decision_function(F[test]))

    assert abs(auc(features) - auc(reference)) <= 0.01


def test_channels_last_does_not_change_features(fitted_cnn, data):
    X, _ = data
    a = (
        DeepFeatureExtractor(FrozenEstimator(fitted_cnn), precision="fp32", channels_last=True)
        .fit(X)
        .transform(X)
    )
    b = (
        DeepFeatureExtractor(FrozenEstimator(fitted_cnn), precision="fp32", channels_last=False)
        .fit(X)
        .transform(X)
    )
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_memmap_input(fitted_cnn, data, tmp_path):
    X, _ = data
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    extractor = DeepFeatureExtractor(FrozenEstimator(fitted_cnn), precision="fp32").fit(mm)
    np.testing.assert_array_equal(extractor.transform(mm), extractor.transform(X))


def test_pickle_round_trip(data):
    X, y = data
    extractor = DeepFeatureExtractor(tiny_cnn()).fit(X, y)
    again = pickle.loads(pickle.dumps(extractor))
    np.testing.assert_array_equal(again.transform(X), extractor.transform(X))
    assert not hasattr(clone(extractor), "cnn_")


def test_in_a_pipeline_with_grid_search(data):
    X, y = data
    model = Pipeline(
        [
            ("extract", DeepFeatureExtractor(tiny_cnn(validation_fraction=0.25), batch_size=16)),
            ("compress", PCA(n_components=4)),
            ("classify", LogisticRegression()),
        ]
    )
    search = GridSearchCV(model, {"extract__cnn__lr": [1e-3, 1e-2]}, scoring="roc_auc", cv=2).fit(
        X, y
    )
    assert search.best_params_["extract__cnn__lr"] in (1e-3, 1e-2)
    fitted = search.best_estimator_.named_steps["extract"].cnn_
    assert fitted.lr == search.best_params_["extract__cnn__lr"]
    assert search.predict_proba(X).shape == (len(X), 2)
    assert "extract__cnn__optimizer" in model.get_params()


def test_progress_bar_only_when_verbose(fitted_cnn, data, terminal):
    X, _ = data
    DeepFeatureExtractor(FrozenEstimator(fitted_cnn), batch_size=8).fit(X).transform(X)
    assert terminal.readouterr().err == ""
    DeepFeatureExtractor(FrozenEstimator(fitted_cnn), batch_size=8, verbose=1).fit(X).transform(X)
    err = terminal.readouterr().err
    assert "deep features" in err and "3/3" in err


def test_batch_size_none_uses_the_cnn_batch_size(fitted_cnn, data):
    X, _ = data
    a = (
        DeepFeatureExtractor(FrozenEstimator(fitted_cnn), batch_size=None, precision="fp32")
        .fit(X)
        .transform(X)
    )
    b = (
        DeepFeatureExtractor(FrozenEstimator(fitted_cnn), batch_size=3, precision="fp32")
        .fit(X)
        .transform(X)
    )
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# -- bad input ----------------------------------------------------------------------------
def test_not_fitted(data):
    X, _ = data
    with pytest.raises(NotFittedError):
        DeepFeatureExtractor(tiny_cnn()).transform(X)
    with pytest.raises(
        NotFittedError, match=r"cnn=FrozenEstimator\(cnn\) but the cnn is not fitted"
    ):
        DeepFeatureExtractor(FrozenEstimator(tiny_cnn())).fit(X)


def test_bad_inputs(fitted_cnn, data):
    X, y = data
    extractor = DeepFeatureExtractor(FrozenEstimator(fitted_cnn)).fit(X)
    with pytest.raises(ValueError, match=r"has 1 channel\(s\) but .* fitted with 2"):
        extractor.transform(X[:, :1])
    with pytest.raises(ValueError, match=r"needs images shaped"):
        extractor.transform(X.reshape(len(X), -1))
    bad = X.copy()
    bad[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite pixels in sample\(s\) \[2\]"):
        extractor.transform(bad)
    with pytest.raises(ValueError, match=r"NaN or infinite"):
        DeepFeatureExtractor(tiny_cnn()).fit(bad, y)
    with pytest.raises(ValueError, match="requires y to be passed"):
        DeepFeatureExtractor(tiny_cnn()).fit(X)
    with pytest.raises(ValueError, match="single class"):
        DeepFeatureExtractor(tiny_cnn()).fit(X, np.ones(len(X)))
    with pytest.raises(ValueError, match=r"has 3 channel\(s\) but .* fitted with 2"):
        DeepFeatureExtractor(FrozenEstimator(fitted_cnn)).fit(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(TypeError, match="cnn must be a SkorchCNN"):
        DeepFeatureExtractor(LogisticRegression()).fit(X, y)
    with pytest.raises(ValueError, match="'precision' parameter of DeepFeatureExtractor"):
        DeepFeatureExtractor(FrozenEstimator(fitted_cnn), precision="half").fit(X)


@pytest.mark.slow
def test_compiled_features_match_eager(fitted_cnn, data):
    """torch.compile path (one compilation, ~20 s): same features, padded last batch."""
    X, _ = data
    X = X[:17]  # batches of 8, 8 and 1 (padded to 8: a single compiled shape)
    eager = (
        DeepFeatureExtractor(FrozenEstimator(fitted_cnn), precision="fp32", batch_size=8)
        .fit(X)
        .transform(X)
    )
    compiled = DeepFeatureExtractor(
        FrozenEstimator(fitted_cnn), precision="fp32", batch_size=8, compile=True
    ).fit(X)
    np.testing.assert_allclose(compiled.transform(X), eager, rtol=1e-3, atol=1e-4)
    assert len(compiled._compiled_cache) == 1
    state = pickle.loads(pickle.dumps(compiled)).__dict__
    assert "_compiled_cache" not in state and "cnn_" in state


# -- cross-fitting ------------------------------------------------------------------


def test_cross_fitted_features_are_out_of_fold(data):
    X, y = data
    extractor = DeepFeatureExtractor(tiny_cnn(), cv=3, precision="fp32")
    oof = extractor.fit_transform(X, y)
    assert oof.shape == (len(X), extractor.feature_dim_) and oof.dtype == np.float32
    in_sample = extractor.transform(X)
    assert not np.allclose(oof, in_sample)
    # fit alone fine-tunes the same all-rows CNN that serves transform
    again = DeepFeatureExtractor(tiny_cnn(), cv=3, precision="fp32").fit(X, y)
    np.testing.assert_allclose(again.transform(X), in_sample, rtol=1e-5, atol=1e-5)
    # cv=None: fit_transform is fit().transform()
    plain = DeepFeatureExtractor(tiny_cnn(), precision="fp32")
    np.testing.assert_allclose(plain.fit_transform(X, y), in_sample, rtol=1e-5, atol=1e-5)


def test_cross_fitting_a_frozen_cnn_keeps_it_for_transform(fitted_cnn, data):
    X, y = data
    extractor = DeepFeatureExtractor(FrozenEstimator(fitted_cnn), cv=2, precision="fp32")
    oof = extractor.fit_transform(X, y)
    assert extractor.cnn_ is fitted_cnn
    np.testing.assert_allclose(
        extractor.transform(X), reference_features(fitted_cnn, X), rtol=1e-4, atol=1e-4
    )
    assert not np.allclose(oof, extractor.transform(X))


def test_cross_fitting_needs_enough_patients_per_class(data):
    X, y = data
    y = y.copy()
    y[:] = 0
    y[:2] = 1
    with pytest.raises(ValueError, match="smallest class of the training data has 2"):
        DeepFeatureExtractor(tiny_cnn(), cv=3).fit_transform(X, y)
    with pytest.raises(ValueError, match="at least 2 folds"):
        DeepFeatureExtractor(tiny_cnn(), cv=1).fit_transform(X, data[1])


def test_cross_fitting_extractor_clones_and_pickles(data):
    X, y = data
    extractor = DeepFeatureExtractor(tiny_cnn(), cv=2, precision="fp32")
    assert clone(extractor).cv == 2
    extractor.fit_transform(X, y)
    again = pickle.loads(pickle.dumps(extractor))
    np.testing.assert_array_equal(again.transform(X), extractor.transform(X))
    assert again.cv == 2

"""The common estimator checks, on the input each estimator takes (issue L).

scikit-learn's data checks feed generic 2-D numeric arrays, which the image
estimators (``(n, C, H, W)`` images) and ClinicalEncoder (a cohort table with the 13
named clinical columns) reject by design. The same properties are checked here on
16-px images and a small synthetic cohort:

- fit returns self; it does not change the parameters, nor set public attributes
  that do not end in ``_`` (``check_estimators_fit_returns_self``,
  ``check_estimators_overwrite_params``, ``check_dont_overwrite_parameters``);
- a method before ``fit`` raises ``NotFittedError``; ``clone`` of a fitted estimator
  is unfitted with the same parameters;
- a pickle round trip and a second fit with the same seed give the same output;
- read-only memory-mapped input (``check_readonly_memmap_input``) and input not
  modified;
- nested parameters route (``get_params(deep=True)`` / ``set_params``);
- images with another channel count than at fit are refused with a clear error.

``n_features_in_`` and the positive-only tag do not apply to images: the channel
count is their check. ``check_fit_score_takes_y``: every ``fit`` here takes ``y``.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from _images import make_images, tiny_cnn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from thyronet import ClinicalEncoder, DeepFeatureExtractor, DualChannelFuser
from thyronet.datasets import make_ptmc_cohort

SIZE = 16


@dataclass
class Case:
    name: str
    make: Any  # () -> unfitted estimator
    data: Any  # () -> (X, y)
    method: str
    nested: dict  # a nested parameter to set, and its value
    channels: bool = True  # images: another channel count must be refused


def _images():
    return make_images(n=16, channels=2, size=SIZE, seed=0)


def _views():
    X, y = _images()
    return X, y  # (n, views, H, W): the fuser's array input


def _cohort():
    cohort = make_ptmc_cohort(n_patients=40, image_size=SIZE, random_state=0)
    return cohort.drop(columns=["longitudinal", "transverse"]), cohort["clnm"].to_numpy()


CASES = [
    Case(
        "DualChannelFuser",
        lambda: DualChannelFuser(image_size=SIZE),
        _views,
        "transform",
        {"image_size": 12},
    ),
    Case(
        "ClinicalEncoder",
        lambda: ClinicalEncoder(),
        _cohort,
        "transform",
        {"handle_unknown": "ignore"},
        channels=False,
    ),
    Case("SkorchCNN", lambda: tiny_cnn(), _images, "predict_proba", {"lr": 0.01}),
    Case(
        "DeepFeatureExtractor",
        lambda: DeepFeatureExtractor(tiny_cnn(), batch_size=8),
        _images,
        "transform",
        {"cnn__max_epochs": 2},
    ),
]
IDS = [c.name for c in CASES]


def _out(estimator, case: Case, X):
    return np.asarray(getattr(estimator, case.method)(X), dtype=float)


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    return request.param


@pytest.fixture
def fitted(case):
    X, y = case.data()
    return case.make().fit(X, y), X, y


def test_fit_returns_self_and_leaves_parameters_alone(case):
    X, y = case.data()
    est = case.make()
    before = {k: joblib.hash(v) for k, v in est.get_params(deep=False).items()}
    public_before = {k for k in vars(est) if not k.startswith("_")}
    assert est.fit(X, y) is est
    after = {k: joblib.hash(v) for k, v in est.get_params(deep=False).items()}
    assert after == before
    added = {k for k in vars(est) if not k.startswith("_")} - public_before
    assert all(k.endswith("_") for k in added), f"fit set public attributes {sorted(added)}"


def test_methods_before_fit_raise_not_fitted(case):
    X, _ = case.data()
    with pytest.raises(NotFittedError):
        getattr(case.make(), case.method)(X)


def test_clone_of_fitted_is_unfitted_with_the_same_parameters(case, fitted):
    est, _, _ = fitted
    check_is_fitted(est)
    copy = clone(est)
    assert joblib.hash(copy.get_params(deep=False)) == joblib.hash(
        clone(case.make()).get_params(deep=False)
    )
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)


def test_pickle_round_trip_gives_the_same_output(case, fitted):
    est, X, _ = fitted
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(_out(again, case, X), _out(est, case, X))


def test_fitting_twice_gives_the_same_output(case):
    X, y = case.data()
    first = _out(case.make().fit(X, y), case, X)
    est = case.make()
    est.fit(X, y)
    est.fit(X, y)
    np.testing.assert_allclose(_out(est, case, X), first, rtol=0, atol=1e-6)


def test_readonly_memmap_input_and_input_not_modified(case, fitted, tmp_path):
    est, X, y = fitted
    expected = _out(est, case, X)
    if isinstance(X, pd.DataFrame):
        snapshot = X.copy(deep=True)
        _out(est, case, X)
        pd.testing.assert_frame_equal(X, snapshot)
        return
    path = tmp_path / "x.npy"
    np.save(path, X)
    readonly = np.load(path, mmap_mode="r")
    np.testing.assert_allclose(_out(est, case, readonly), expected, rtol=0, atol=1e-6)
    refit = case.make().fit(readonly, y)
    np.testing.assert_allclose(_out(refit, case, X), expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.load(path), X)


def test_nested_parameters_route(case):
    est = case.make()
    deep = est.get_params(deep=True)
    est.set_params(**deep)  # every reported parameter can be set back
    ((key, value),) = case.nested.items()
    assert key in deep
    est.set_params(**{key: value})
    assert est.get_params(deep=True)[key] == value


def test_another_channel_count_than_at_fit_is_refused(case, fitted):
    if not case.channels:
        pytest.skip("a cohort table has no channels; missing columns: tests/test_clinical.py")
    est, X, _ = fitted
    three = np.concatenate([X, X[:, :1]], axis=1)
    with pytest.raises(ValueError, match=r"(?i)channel|view"):
        getattr(est, case.method)(three)

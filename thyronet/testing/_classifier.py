"""The contract check of a candidate-classifier factory (:func:`check_classifier`)."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.utils.validation import check_is_fitted

from thyronet.testing._harness import _fail, _resolve


def _toy_data(random_state: int):
    rng = np.random.default_rng(random_state)
    n = 80
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 4))
    X[:, 0] += 2.5 * y
    X[:, 1] -= 1.5 * y
    return pd.DataFrame(X, columns=[f"x{k}" for k in range(4)]), y


def check_classifier(
    factory: str | Callable[[], Any], *, min_train_auc: float | None = 0.75, random_state: int = 0
) -> None:
    """Check that a candidate-classifier factory keeps the contract of ``ClassifierSelector``.

    Checked: ``factory()`` returns a *new*, unfitted scikit-learn classifier on every
    call, with ``predict_proba``, that :func:`sklearn.base.clone` reproduces; on a
    tiny, easy binary problem (a DataFrame of 80 rows) it fits without changing
    its input, predicts probabilities of shape ``(n, 2)`` that sum to one,
    records ``classes_``, learns (training AUC at least ``min_train_auc``), gives
    the same probabilities when fitted twice (fix the seed in the factory) and
    after pickling.

    Parameters
    ----------
    factory : str or callable
        A registered name, or a factory not registered yet.
    min_train_auc : float or None, default=0.75
        Lowest acceptable training AUC on the easy problem; ``None`` skips it
        (e.g. for a deliberately uninformed baseline).
    random_state : int, default=0
        Seed of the toy data.

    Raises
    ------
    AssertionError
        Naming the classifier and the broken part of the contract.

    Examples
    --------
    >>> from thyronet.testing import check_classifier
    >>> check_classifier("naive_bayes")
    """
    name, factory, _ = _resolve("classifiers", factory, None)
    where = f"classifier {name!r}"
    if not callable(factory):
        raise _fail(where, f"the entry must be a factory (callable), got {type(factory).__name__}")
    try:
        first, second = factory(), factory()
    except Exception as exc:
        raise _fail(where, f"factory() raised {type(exc).__name__}: {exc}") from exc
    if first is second:
        raise _fail(
            where,
            "factory() returned the same object twice; it must build a new "
            "classifier on every call",
        )
    if not is_classifier(first):
        raise _fail(
            where,
            f"factory() returned {type(first).__name__}, not a scikit-learn "
            "classifier (is_classifier is False)",
        )
    if not hasattr(first, "predict_proba"):
        raise _fail(where, f"{type(first).__name__} has no predict_proba")
    try:
        check_is_fitted(first)
    except NotFittedError:
        pass
    else:
        raise _fail(where, "factory() returned a fitted classifier; it must be unfitted")
    try:
        unfitted = clone(first)
    except Exception as exc:
        raise _fail(where, f"sklearn.base.clone failed: {type(exc).__name__}: {exc}") from exc

    X, y = _toy_data(random_state)
    X_before = X.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        try:
            first.fit(X, y)
            proba = first.predict_proba(X)
        except Exception as exc:
            raise _fail(
                where,
                f"fit/predict_proba on a tiny binary problem failed: {type(exc).__name__}: {exc}",
            ) from exc
    if not X.equals(X_before):
        raise _fail(where, "fit modified its input X")
    proba = np.asarray(proba)
    if proba.shape != (len(y), 2):
        raise _fail(where, f"predict_proba returned shape {proba.shape}; expected ({len(y)}, 2)")
    if not (
        np.all(np.isfinite(proba))
        and proba.min() >= 0
        and proba.max() <= 1
        and np.allclose(proba.sum(axis=1), 1, atol=1e-6)
    ):
        raise _fail(where, "predict_proba must give probabilities in [0, 1] summing to 1")
    if not np.array_equal(np.asarray(getattr(first, "classes_", [])), [0, 1]):
        raise _fail(where, f"classes_ is {getattr(first, 'classes_', None)!r}; expected [0, 1]")
    if min_train_auc is not None:
        auc = roc_auc_score(y, proba[:, 1])
        if auc < min_train_auc:
            raise _fail(
                where,
                f"training AUC {auc:.3f} on an easy problem is below "
                f"{min_train_auc}: does it learn from X?",
            )
    try:
        check_is_fitted(second)
    except NotFittedError:
        pass
    else:
        raise _fail(
            where,
            "fitting one classifier from factory() fitted another: the "
            "factory shares state between calls",
        )
    refit = unfitted.fit(X, y).predict_proba(X)
    if not np.allclose(refit, proba, atol=1e-8):
        raise _fail(
            where,
            "two fits on the same data give different probabilities; fix the "
            "random seed (random_state) in the factory",
        )
    restored = pickle.loads(pickle.dumps(first))
    if not np.allclose(restored.predict_proba(X), proba, atol=1e-12):
        raise _fail(where, "a pickled copy predicts other probabilities")

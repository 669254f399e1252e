"""Cross-fitting: out-of-fold deep features for the rows a CNN was trained on.

A model fitted on the features of the very patients its CNN was fine-tuned on learns
from features that already "know" the labels (the CNN has memorised them), so its
downstream steps overfit. As scikit-learn's :class:`~sklearn.preprocessing.TargetEncoder`
does for target encodings, :meth:`DeepFeatureExtractor.fit_transform` with ``cv`` set
returns each training row's features from a CNN fine-tuned on the other folds
(:func:`out_of_fold_features`); the CNN fitted on all rows serves ``transform``.
"""

from __future__ import annotations

import copy
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, check_cv

__all__ = ["check_feature_cv", "out_of_fold_features"]


def check_feature_cv(cv, y, random_state=None):
    """The splitter of ``cv`` (an int: stratified, shuffled folds seeded by ``random_state``).

    Parameters
    ----------
    cv : int or cross-validation splitter
    y : array-like of shape (n_samples,)
        Binary labels.
    random_state : int, RandomState or None
        Seed of the shuffled folds (the CNN's).

    Returns
    -------
    splitter

    Raises
    ------
    ValueError
        ``cv`` below 2, or more folds than patients in the smallest class.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.cnn._crossfit import check_feature_cv
    >>> check_feature_cv(3, np.array([0, 1] * 5), random_state=0).get_n_splits()
    3
    """
    if isinstance(cv, Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv must be at least 2 folds (or None: no cross-fitting); got {cv}")
        _, counts = np.unique(np.asarray(y), return_counts=True)
        smallest = int(counts.min()) if len(counts) else 0
        if cv > smallest:
            raise ValueError(
                f"cv={cv} cross-fitting folds need at least {cv} patients of each class, "
                f"but the smallest class of the training data has {smallest}; use "
                f"cv <= {smallest} or cv=None"
            )
        return StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=random_state)
    return check_cv(cv, y, classifier=True)


def out_of_fold_features(extractor, base_cnn, X, y, fit_params: dict[str, Any]) -> np.ndarray:
    """Each row's features from a clone of ``base_cnn`` fine-tuned without that row.

    Parameters
    ----------
    extractor : DeepFeatureExtractor
        Fitted; its inference settings (batch size, precision, layout) are used.
    base_cnn : SkorchCNN
        Unfitted template; one clone is fine-tuned per fold.
    X : ndarray of shape (n_samples, n_channels, height, width)
    y : array-like of shape (n_samples,)
    fit_params : dict
        Passed to each fold's :meth:`SkorchCNN.fit` (``X_val``, ``y_val``).

    Returns
    -------
    ndarray of shape (n_samples, feature_dim), float32
    """
    y = np.asarray(y)
    splitter = check_feature_cv(extractor.cv, y, getattr(base_cnn, "random_state", None))
    out = np.empty((len(X), extractor.feature_dim_), dtype=np.float32)
    seen = np.zeros(len(X), dtype=bool)
    for train, test in splitter.split(np.zeros(len(y)), y):
        fold = copy.copy(extractor)  # same inference settings, the fold's CNN
        fold.__dict__.pop("_compiled_cache", None)
        fold.cnn_ = clone(base_cnn).fit(X[train], y[train], **fit_params)
        out[test] = fold.transform(X[test])
        seen[test] = True
    if not seen.all():
        raise ValueError(
            f"the cross-fitting splitter left {int((~seen).sum())} row(s) out of every test "
            "fold; use a splitter that partitions the rows (KFold, StratifiedKFold)"
        )
    return out

"""Shared parts of the selection steps: class checks, stratified CV, the selector base."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted


def _check_classes(y, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """Class labels and integer codes of ``y``; at least two classes or a clear error."""
    check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise ValueError(
            f"{owner} needs at least two classes in y to test features against the label; "
            f"got 1 class: {classes.tolist()}"
        )
    return classes, codes


def _class_cv(cv, y_codes: np.ndarray, owner: str, random_state=None):
    """``check_cv`` for a classification target, with integer folds capped by class size.

    With an integer ``cv`` the folds are stratified; when the smallest class has
    fewer members than ``cv``, the number of folds is lowered to that size so every
    validation fold holds every class (at least 2 folds, otherwise an error). With a
    ``random_state`` the integer folds are shuffled with it (not in row order).
    """
    if isinstance(cv, Integral) or cv is None:
        n_splits = 5 if cv is None else int(cv)
        smallest = int(np.bincount(y_codes).min())
        if smallest < 2:
            raise ValueError(
                f"{owner} cross-validates with stratified folds, but the smallest class of y "
                f"has only {smallest} sample; every class needs at least 2 samples"
            )
        cv = min(n_splits, smallest)
        if random_state is not None:
            return StratifiedKFold(cv, shuffle=True, random_state=random_state)
    return check_cv(cv, y_codes, classifier=True)


class _Selector(SelectorMixin, BaseEstimator):
    """Shared parts: the support mask and a NotFittedError before anything else."""

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def transform(self, X):
        """Keep the selected features of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)

        Returns
        -------
        array-like of shape (n_samples, n_selected)
            A DataFrame of the kept columns after ``set_output(transform="pandas")``.
        """
        check_is_fitted(self, "support_")
        return super().transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

"""Choosing the classifier of the combined model by AUC (cross-validated or on a validation set).

The paper fits Logistic Regression, LightGBM and Naive Bayes on the selected
features and keeps the one with the highest AUC. :class:`ClassifierSelector`
does this as one scikit-learn classifier: it compares the candidates, refits the
winner and then behaves as the winner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import cross_validate
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from thyronet.plugins import get_registry
from thyronet.selection._common import _check_classes, _class_cv

__all__ = ["ClassifierSelector"]


def _best_has(attr: str) -> Callable[[ClassifierSelector], bool]:
    """Method ``attr`` exists when the fitted winner has it (always, before fit)."""

    def check(self: ClassifierSelector) -> bool:
        if hasattr(self, "best_estimator_"):
            return hasattr(self.best_estimator_, attr)
        return True

    return check


class ClassifierSelector(ClassifierMixin, BaseEstimator):
    """Compare candidate classifiers by AUC, refit the best and predict with it.

    Two protocols choose the winner:

    - **cross-validation** (default): the stratified CV score (AUC) of each
      candidate on the training data; the winner is then refitted on all of it;
    - **validation set** (the paper's protocol): pass ``X_val`` and ``y_val`` to
      :meth:`fit`; every candidate is fitted on the training data and scored on
      the validation set, and the winner is kept as fitted on the training data.

    Inside a :class:`~sklearn.pipeline.Pipeline` the validation set must go
    through the preceding steps too; enable metadata routing and let the
    pipeline transform it::

        sklearn.set_config(enable_metadata_routing=True)
        model = Pipeline([..., ("classify",
                                ClassifierSelector().set_fit_request(X_val=True, y_val=True))],
                         transform_input=["X_val"])
        model.fit(X_train, y_train, X_val=X_val, y_val=y_val)

    Parameters
    ----------
    candidates : None, dict, or list, default=None
        ``None``: every classifier registered through the plugin hook
        ``thyronet_register_classifiers`` (built-ins: ``"logistic_regression"``,
        ``"lightgbm"``, ``"naive_bayes"``). A dict maps names to unfitted
        classifiers (cloned), to factories (called) or to registered names; a
        list holds registered names or ``(name, classifier)`` pairs. Every
        candidate must have ``predict_proba``. An unregistered name raises
        :class:`thyronet.plugins.UnknownEntryError` in :meth:`fit`.
    scoring : str, callable or None, default=None
        How candidates are compared (higher is better). ``None``: ``"roc_auc"``
        for two classes, ``"roc_auc_ovr"`` for more.
    cv : int, cross-validation generator or iterable, default=5
        Folds of the cross-validation protocol. An integer gives stratified
        folds, lowered to the size of the smallest class when that is smaller.
    n_jobs : int or None, default=None
        Parallel jobs of the cross-validation.
    verbose : int, default=0
        Verbosity of the cross-validation (``cross_validate``).
    random_state : int, RandomState or None, default=None
        Shuffles the folds of an integer ``cv`` (``None``: folds in row order, not
        shuffled); the study passes its seed.

    Attributes
    ----------
    best_name_ : str
        Name of the winner.
    best_estimator_ : estimator
        The winner, fitted on the training data.
    best_score_ : float
        Its score.
    scores_ : pandas.DataFrame
        One row per candidate (in candidate order): ``mean_score``, ``std_score``,
        ``rank`` (1 = winner; ties go to the earlier candidate), ``fit_time``
        (seconds) and one ``split<i>_score`` column per CV fold (the validation
        protocol has ``std_score`` NaN and no split columns).
    selected_by_ : {"cv", "validation"}
        The protocol used.
    classes_ : ndarray
        Class labels.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of str
        Names of the features seen in fit (only when ``X`` has string column names).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from thyronet import ClassifierSelector
    >>> X, y = make_classification(n_samples=120, n_features=5, random_state=0)
    >>> model = ClassifierSelector(cv=3).fit(X, y)
    >>> model.best_name_ in model.scores_.index
    True
    >>> list(model.scores_.columns[:3])
    ['mean_score', 'std_score', 'rank']
    >>> model.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints: ClassVar[dict] = {
        "candidates": [None, dict, list, tuple],
        "scoring": [None, str, callable],
        "cv": ["cv_object"],
        "n_jobs": [None, Integral],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        candidates: Mapping[str, object] | Sequence | None = None,
        *,
        scoring: str | Callable | None = None,
        cv=5,
        n_jobs: int | None = None,
        verbose: int = 0,
        random_state=None,
    ) -> None:
        self.candidates = candidates
        self.scoring = scoring
        self.cv = cv
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    # -- candidates ------------------------------------------------------------
    def _make_candidates(self) -> list[tuple[str, BaseEstimator]]:
        if self.candidates is None:
            registry = get_registry("classifiers")
            items = [(name, registry[name]) for name in registry]
        elif isinstance(self.candidates, Mapping):
            items = list(self.candidates.items())
        else:
            items = []
            for item in self.candidates:
                if isinstance(item, str):
                    items.append((item, item))
                elif isinstance(item, tuple | list) and len(item) == 2:
                    items.append(tuple(item))
                else:
                    raise TypeError(
                        "candidates in a list must be registered names or (name, classifier) "
                        f"pairs; got {item!r}"
                    )
        if not items:
            raise ValueError("ClassifierSelector needs at least one candidate classifier")
        out: list[tuple[str, BaseEstimator]] = []
        for name, value in items:
            if not isinstance(name, str) or not name:
                raise TypeError(f"candidate names must be non-empty strings; got {name!r}")
            if any(name == seen for seen, _ in out):
                raise ValueError(f"candidate name {name!r} is given twice")
            if isinstance(value, str):
                value = get_registry("classifiers")[value]  # unknown -> lists the names
            if hasattr(value, "fit") and not isinstance(value, type):
                estimator = clone(value)
            elif callable(value):
                estimator = value()
            else:
                raise TypeError(
                    f"candidate {name!r} must be a classifier, a factory returning one or a "
                    f"registered name; got {type(value).__name__}"
                )
            if not (hasattr(estimator, "fit") and is_classifier(estimator)):
                raise TypeError(
                    f"candidate {name!r} is not a scikit-learn classifier: "
                    f"{type(estimator).__name__}"
                )
            if not hasattr(estimator, "predict_proba"):
                raise TypeError(
                    f"candidate {name!r} ({type(estimator).__name__}) has no predict_proba; "
                    "ClassifierSelector compares candidates by AUC of predicted "
                    "probabilities; wrap it, e.g. CalibratedClassifierCV(LinearSVC(), "
                    "ensemble=False)"
                )
            out.append((name, estimator))
        return out

    # -- fit -------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, X_val=None, y_val=None) -> ClassifierSelector:
        """Compare the candidates, keep the best fitted on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features. A DataFrame is passed on to the candidates as is.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        X_val : array-like of shape (n_val, n_features), default=None
            Validation features, in the same feature space as ``X``. With
            ``y_val``, candidates are compared on this set instead of by CV.
        y_val : array-like of shape (n_val,), default=None
            Validation labels.

        Returns
        -------
        self : ClassifierSelector
        """
        X_checked, y = validate_data(self, X, y)
        X_fit = X if isinstance(X, pd.DataFrame) else X_checked
        _, codes = _check_classes(y, type(self).__name__)
        candidates = self._make_candidates()
        classes = np.unique(y)
        scoring = self.scoring
        if scoring is None:
            scoring = "roc_auc" if classes.size == 2 else "roc_auc_ovr"

        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val (or neither)")
        rows = []
        if X_val is not None:
            X_val_fit, y_val = self._check_validation(X_val, y_val, classes)
            fitted = {}
            for name, estimator in candidates:
                start = time.perf_counter()
                estimator.fit(X_fit, y)
                elapsed = time.perf_counter() - start
                scorer = check_scoring(estimator, scoring=scoring)
                score = float(scorer(estimator, X_val_fit, y_val))
                rows.append(
                    {"name": name, "mean_score": score, "std_score": np.nan, "fit_time": elapsed}
                )
                fitted[name] = estimator
            self.selected_by_ = "validation"
        else:
            cv = _class_cv(self.cv, codes, type(self).__name__, self.random_state)
            for name, estimator in candidates:
                result = cross_validate(
                    estimator,
                    X_fit,
                    y,
                    cv=cv,
                    scoring=scoring,
                    n_jobs=self.n_jobs,
                    verbose=self.verbose,
                    error_score="raise",
                )
                split = result["test_score"]
                row = {
                    "name": name,
                    "mean_score": float(np.mean(split)),
                    "std_score": float(np.std(split)),
                    "fit_time": float(np.sum(result["fit_time"])),
                }
                row.update({f"split{i}_score": float(s) for i, s in enumerate(split)})
                rows.append(row)
            self.selected_by_ = "cv"

        table = pd.DataFrame(rows).set_index("name")
        table.index.name = None
        if table["mean_score"].isna().all():
            raise ValueError(f"no candidate could be scored with {scoring!r} (all NaN)")
        order = np.argsort(-table["mean_score"].fillna(-np.inf).to_numpy(), kind="stable")
        rank = np.empty(len(table), dtype=int)
        rank[order] = np.arange(1, len(table) + 1)
        table.insert(2, "rank", rank)
        self.scores_ = table
        self.best_name_ = str(table.index[order[0]])
        self.best_score_ = float(table["mean_score"].iloc[order[0]])
        if self.selected_by_ == "validation":
            self.best_estimator_ = fitted[self.best_name_]
        else:
            self.best_estimator_ = clone(dict(candidates)[self.best_name_]).fit(X_fit, y)
        self.classes_ = self.best_estimator_.classes_
        return self

    def _check_validation(self, X_val, y_val, classes):
        n_val = getattr(X_val, "shape", (None, None))
        if len(n_val) == 2 and n_val[1] != self.n_features_in_:
            raise ValueError(
                f"X_val has {n_val[1]} features but X has {self.n_features_in_}: X_val must be "
                "in the same feature space. Inside a Pipeline, have the pipeline transform it "
                "with Pipeline(..., transform_input=['X_val']) and metadata routing "
                "(sklearn.set_config(enable_metadata_routing=True))."
            )
        X_checked = validate_data(self, X_val, reset=False)
        X_val_fit = X_val if isinstance(X_val, pd.DataFrame) else X_checked
        y_val = np.asarray(y_val)
        if y_val.ndim != 1 or y_val.shape[0] != X_checked.shape[0]:
            raise ValueError(
                f"y_val must be 1-D with one label per row of X_val ({X_checked.shape[0]}); "
                f"got shape {y_val.shape}"
            )
        unknown = np.setdiff1d(np.unique(y_val), classes)
        if unknown.size:
            raise ValueError(
                f"y_val has labels {unknown.tolist()} not seen in y ({classes.tolist()})"
            )
        if np.unique(y_val).size < 2:
            raise ValueError(
                "y_val holds a single class; AUC on the validation set needs both classes"
            )
        return X_val_fit, y_val

    # -- delegation ------------------------------------------------------------
    def _input(self, X):
        check_is_fitted(self, "best_estimator_")
        X_checked = validate_data(self, X, reset=False)
        return X if isinstance(X, pd.DataFrame) else X_checked

    @available_if(_best_has("predict"))
    def predict(self, X) -> np.ndarray:
        """Class labels predicted by the winner.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X = self._input(X)
        return self.best_estimator_.predict(X)

    @available_if(_best_has("predict_proba"))
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities predicted by the winner.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        X = self._input(X)
        return self.best_estimator_.predict_proba(X)

    @available_if(_best_has("predict_log_proba"))
    def predict_log_proba(self, X) -> np.ndarray:
        """Log class probabilities predicted by the winner.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        X = self._input(X)
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_best_has("decision_function"))
    def decision_function(self, X) -> np.ndarray:
        """Decision function of the winner (only when the winner has one).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        X = self._input(X)
        return self.best_estimator_.decision_function(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the features the classifier uses (its input), so that
        ``pipeline.get_feature_names_out()`` names the final features of a model.

        Parameters
        ----------
        input_features : array-like of str or None
            Names of the input features; default ``feature_names_in_`` or ``x0, x1, ...``.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self, "best_estimator_")
        return _check_feature_names_in(self, input_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

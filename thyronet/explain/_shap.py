"""SHAP values of a fitted tabular model's classifier, with the explainer that fits it.

The rows are transformed through the model up to its classifier and the
classifier (the one :class:`~thyronet.ClassifierSelector` chose) is explained on
those features: :class:`shap.TreeExplainer` for tree ensembles,
:class:`shap.LinearExplainer` for binary linear models and
:class:`shap.PermutationExplainer` for any other classifier.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.exceptions import NotFittedError
from sklearn.feature_selection import SelectorMixin
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_is_fitted

from thyronet.classifier_selection import ClassifierSelector

SHAP_ALGORITHMS = ("auto", "tree", "linear", "permutation")
"""Explainers of :class:`ShapExplainer` (``algorithm=``)."""


def _import_shap():
    """shap, imported on first use: importing it takes seconds, and Grad-CAM needs none of it."""
    with warnings.catch_warnings():
        # shap's colour maps use Colormap.set_bad/set_over/set_under, which
        # matplotlib >= 3.11 marks as pending deprecation; harmless.
        warnings.filterwarnings(
            "ignore",
            message=r"The set_(bad|over|under) function",
            category=PendingDeprecationWarning,
        )
        import shap
    return shap


def _is_lightgbm(clf) -> bool:
    return type(clf).__module__.split(".")[0] == "lightgbm"


def _tree_model(clf) -> bool:
    if isinstance(
        clf,
        (
            DecisionTreeClassifier,
            RandomForestClassifier,
            ExtraTreesClassifier,
            GradientBoostingClassifier,
        ),
    ):
        return True
    return type(clf).__module__.split(".")[0] in ("lightgbm", "xgboost", "catboost")


def _linear_model(clf) -> bool:
    coef = getattr(clf, "coef_", None)
    return (
        isinstance(clf, LinearClassifierMixin)
        and coef is not None
        and np.ndim(coef) == 2
        and np.shape(coef)[0] == 1
    )


def _classifier_of(final) -> tuple[Any, str]:
    """The fitted classifier a final step is or selected, and its name."""
    if isinstance(final, ClassifierSelector):
        check_is_fitted(final, "best_estimator_")
        return final.best_estimator_, final.best_name_
    check_is_fitted(final)
    return final, type(final).__name__


def _log_odds(clf, X) -> np.ndarray:
    """Log-odds of ``classes_[1]`` (the margin tree and linear explainers decompose)."""
    if _is_lightgbm(clf):
        return np.asarray(clf.predict(X, raw_score=True), dtype=np.float64)
    if hasattr(clf, "decision_function") and _linear_model(clf):
        return np.asarray(clf.decision_function(X), dtype=np.float64).ravel()
    if hasattr(clf, "predict_log_proba"):
        with np.errstate(divide="ignore"):
            lp = np.asarray(clf.predict_log_proba(X), dtype=np.float64)
        lp = np.clip(lp, np.log(1e-300), 0.0)
        return lp[:, 1] - lp[:, 0]
    p = np.clip(np.asarray(clf.predict_proba(X), dtype=np.float64)[:, 1], 1e-15, 1 - 1e-15)
    return np.log(p) - np.log1p(-p)


class ShapExplainer:
    """SHAP explainer of a fitted tabular model's classifier, chosen to fit the classifier.

    The rows are transformed through the model up to its classifier (for the
    combined model: features, scaling, P-value filter, LASSO), and the classifier
    chosen by :class:`~thyronet.ClassifierSelector` is explained on those
    features, with the names ``model[:-1].get_feature_names_out()`` gives them.

    ``algorithm="auto"`` picks:

    - ``"tree"``: :class:`shap.TreeExplainer` (exact, path-dependent) for LightGBM,
      XGBoost, CatBoost and scikit-learn tree ensembles;
    - ``"linear"``: :class:`shap.LinearExplainer` (interventional, on the
      background) for binary linear models such as logistic regression;
    - ``"permutation"``: :class:`shap.PermutationExplainer` (model-agnostic; the
      values add up exactly to the output) for naive Bayes and any other classifier.

    Values are in log-odds of ``classes_[1]`` (probability for forests, which
    average probabilities); :meth:`model_output` returns the explained quantity,
    so ``values.sum(1) + base_values == model_output(X)``.

    Parameters
    ----------
    model : Pipeline or classifier
        A fitted pipeline ending in a classifier or a
        :class:`~thyronet.ClassifierSelector` (the combined or clinical model), or
        a fitted classifier (then rows are already its features).
    background : DataFrame or array-like
        Rows (what ``model`` takes) that represent the population: the baseline of
        the linear and permutation explainers. Usually the training cohort.
    algorithm : {"auto", "tree", "linear", "permutation"}, default="auto"
    feature_names : sequence of str, optional
        Names of the classifier's features when they cannot be read from the model.
    max_background : int, default=100
        Background rows kept (a random subset when there are more).
    max_evals : int or "auto", default="auto"
        Model evaluations per row of the permutation explainer (at least
        ``2 * n_features + 1``, one antithetic permutation); ``"auto"`` is
        ``10 * (2 * n_features + 1)``: ten permutations.
    random_state : int, default=0
        Seeds the background subset and the permutations.
    verbose : bool, default=False
        Show shap's progress bar for slow explanations.

    Attributes
    ----------
    kind : str
        ``"tree"``, ``"linear"`` or ``"permutation"``.
    explainer : shap.Explainer
        The shap explainer.
    classifier : estimator
        The explained classifier (the selected one for a ClassifierSelector).
    classifier_name : str
        Its name (``best_name_`` of a ClassifierSelector).
    feature_names : ndarray of str
        Names of the features the classifier takes.
    output : str
        ``"log-odds"`` or ``"probability"``: the unit of the SHAP values.
    background : ndarray of shape (n_background, n_features)
        The background, as classifier features.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from thyronet.explain import ShapExplainer
    >>> X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    >>> explainer = ShapExplainer(LogisticRegression().fit(X, y), X)
    >>> explainer.kind, explainer.output
    ('linear', 'log-odds')
    >>> explanation = explainer(X[:5])
    >>> explanation.values.shape
    (5, 4)
    """

    def __init__(
        self,
        model,
        background,
        *,
        algorithm: str = "auto",
        feature_names: Sequence[str] | None = None,
        max_background: int = 100,
        max_evals: int | str = "auto",
        random_state: int = 0,
        verbose: bool = False,
    ) -> None:
        if algorithm not in SHAP_ALGORITHMS:
            raise ValueError(
                f"unknown SHAP algorithm {algorithm!r}; choose one of {list(SHAP_ALGORITHMS)}"
            )
        if not isinstance(max_background, Integral) or max_background < 1:
            raise ValueError(f"max_background must be a positive integer, got {max_background!r}")
        if not (max_evals == "auto" or (isinstance(max_evals, Integral) and max_evals > 0)):
            raise ValueError(f"max_evals must be 'auto' or a positive integer, got {max_evals!r}")
        self.model = model
        if isinstance(model, Pipeline):
            final = model.steps[-1][1]
            self._head = model[:-1] if len(model.steps) > 1 else None
        else:
            final, self._head = model, None
        if not hasattr(final, "predict_proba"):
            raise TypeError(
                f"SHAP explains a classifier with predict_proba; the model ends in "
                f"{type(final).__name__}"
            )
        self.classifier, self.classifier_name = _classifier_of(final)
        classes = getattr(self.classifier, "classes_", None)
        if classes is None or len(classes) != 2:
            raise ValueError(
                "SHAP explanations here are for binary classifiers; the classifier "
                f"has classes {None if classes is None else list(classes)}"
            )
        self.classes_ = np.asarray(classes)
        self._columns = getattr(self.classifier, "feature_names_in_", None)
        features = self.transform(background)
        if len(features) == 0:
            raise ValueError("the background has no rows")
        self.feature_names = self._feature_names(final, feature_names, features.shape[1])
        rng = np.random.default_rng(random_state)
        if len(features) > max_background:
            features = features[np.sort(rng.choice(len(features), max_background, replace=False))]
        self.background = features
        self.random_state = random_state
        self.verbose = verbose
        self.max_evals = max_evals
        self.algorithm = algorithm
        self.kind = self._choose(algorithm)
        self.explainer, self.output = self._build()

    # -- features ---------------------------------------------------------------------
    def _feature_names(self, final, given, n_features: int) -> np.ndarray:
        if given is not None:
            names = np.asarray(list(given), dtype=object)
        elif self._head is not None:
            try:
                names = np.asarray(self._head.get_feature_names_out(), dtype=object)
            except (AttributeError, ValueError, TypeError, NotFittedError):
                names = getattr(final, "feature_names_in_", None)
        else:
            names = getattr(final, "feature_names_in_", None)
        if names is None:
            names = np.asarray([f"x{k}" for k in range(n_features)], dtype=object)
        if len(names) != n_features:
            raise ValueError(
                f"{len(names)} feature names for {n_features} features reaching the classifier"
            )
        return np.asarray([str(n) for n in names], dtype=object)

    def transform(self, X) -> np.ndarray:
        """The features that reach the classifier, ``(n, n_features)`` float64."""
        features = X if self._head is None else self._head.transform(X)
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(
                f"SHAP explains tabular classifiers, whose input is 2-D; this "
                f"model's classifier takes shape {features.shape} (for a CNN, "
                "use Grad-CAM: thyronet.explain.gradcam)"
            )
        return features

    def _frame(self, features: np.ndarray):
        """Features in the form the classifier was fitted on (named columns or array)."""
        if self._columns is not None:
            return pd.DataFrame(features, columns=list(self._columns))
        return features

    def model_output(self, X, *, transformed: bool = False) -> np.ndarray:
        """The quantity the SHAP values decompose, for rows ``X``.

        Parameters
        ----------
        X : DataFrame or array-like
            Rows as the model takes them (or classifier features with
            ``transformed=True``).
        transformed : bool, default=False

        Returns
        -------
        ndarray of shape (n,)
            Log-odds (or probability, see ``output``) of ``classes_[1]``.
        """
        features = np.asarray(X, dtype=np.float64) if transformed else self.transform(X)
        data = self._frame(features)
        if self.output == "probability":
            return np.asarray(self.classifier.predict_proba(data), dtype=np.float64)[:, 1]
        return _log_odds(self.classifier, data)

    # -- explainers -------------------------------------------------------------------
    def _choose(self, algorithm: str) -> str:
        if algorithm != "auto":
            return algorithm
        if _tree_model(self.classifier):
            return "tree"
        if _linear_model(self.classifier):
            return "linear"
        return "permutation"

    def _build(self):
        shap = _import_shap()
        clf = self.classifier
        if self.kind == "tree":
            try:
                explainer = shap.TreeExplainer(clf)
            except ValueError as exc:  # shap's InvalidModelError: a model it cannot read
                raise ValueError(
                    f"shap's TreeExplainer cannot explain the classifier "
                    f"{self.classifier_name!r} ({type(clf).__name__}): {exc}; use "
                    "algorithm='permutation'"
                ) from exc
            tree_output = getattr(explainer.model, "tree_output", "log_odds")
            return explainer, ("probability" if tree_output == "probability" else "log-odds")
        if self.kind == "linear":
            if not _linear_model(clf):
                raise ValueError(
                    f"algorithm='linear' needs a binary linear classifier (coef_ "
                    f"of one row); {self.classifier_name!r} is "
                    f"{type(clf).__name__}; use algorithm='permutation'"
                )
            coef = np.asarray(clf.coef_, dtype=np.float64)[0]
            intercept = float(np.ravel(clf.intercept_)[0])
            masker = shap.maskers.Independent(self.background, max_samples=len(self.background))
            return shap.LinearExplainer((coef, intercept), masker), "log-odds"

        def f(features: np.ndarray) -> np.ndarray:
            return _log_odds(clf, self._frame(np.asarray(features, dtype=np.float64)))

        masker = shap.maskers.Independent(self.background, max_samples=len(self.background))
        return shap.PermutationExplainer(f, masker, seed=self.random_state), "log-odds"

    def __call__(self, X, *, transformed: bool = False):
        """Explain rows ``X``.

        Parameters
        ----------
        X : DataFrame or array-like
            Rows as the model takes them (the cohort table for the combined model),
            or classifier features with ``transformed=True``.
        transformed : bool, default=False

        Returns
        -------
        shap.Explanation
            ``values`` ``(n, n_features)``, ``base_values`` ``(n,)``, ``data`` (the
            classifier's features), ``feature_names``; ``display_data`` holds the
            features before standardisation when the model scales them (so
            waterfalls show e.g. the nodule size in mm).
        """
        shap = _import_shap()
        features = np.asarray(X, dtype=np.float64) if transformed else self.transform(X)
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected {len(self.feature_names)} classifier features; got "
                f"shape {features.shape}"
            )
        if self.kind == "tree":
            raw = self.explainer(self._frame(features), check_additivity=True)
            values = np.asarray(raw.values, dtype=np.float64)
            base = np.asarray(raw.base_values, dtype=np.float64)
            if values.ndim == 3:  # one column per class: keep classes_[1]
                values, base = values[..., 1], base[..., 1]
            base = np.broadcast_to(base.reshape(-1), (len(features),)).copy()
        elif self.kind == "linear":
            raw = self.explainer(features)
            values = np.asarray(raw.values, dtype=np.float64)
            base = np.broadcast_to(
                np.asarray(raw.base_values, dtype=np.float64).reshape(-1), (len(features),)
            ).copy()
        else:
            p = features.shape[1]
            evals = (
                10 * (2 * p + 1)
                if self.max_evals == "auto"
                else max(int(self.max_evals), 2 * p + 1)
            )
            raw = self.explainer(features, max_evals=evals, silent=not self.verbose)
            values = np.asarray(raw.values, dtype=np.float64)
            base = np.asarray(raw.base_values, dtype=np.float64).reshape(-1)
        return shap.Explanation(
            values=values,
            base_values=base,
            data=features,
            display_data=self._display_data(features),
            feature_names=list(self.feature_names),
        )

    def _display_data(self, features: np.ndarray) -> np.ndarray | None:
        """Features before standardisation, when a scaler followed only by selectors
        precedes the classifier (the combined and clinical models)."""
        if self._head is None:
            return None
        steps = [s for _, s in self._head.steps if s not in (None, "passthrough")]
        scalers = [i for i, s in enumerate(steps) if isinstance(s, StandardScaler)]
        if not scalers or not all(isinstance(s, SelectorMixin) for s in steps[scalers[-1] + 1 :]):
            return None
        scaler = steps[scalers[-1]]
        index = np.arange(scaler.n_features_in_)
        for selector in steps[scalers[-1] + 1 :]:
            index = index[selector.get_support()]
        scale = scaler.scale_[index] if scaler.scale_ is not None else 1.0
        mean = scaler.mean_[index] if scaler.mean_ is not None else 0.0
        return features * scale + mean


def shap_explain(
    model,
    X,
    *,
    background=None,
    algorithm: str = "auto",
    max_background: int = 100,
    max_evals: int | str = "auto",
    random_state: int = 0,
    verbose: bool = False,
):
    """SHAP values of a fitted combined (or clinical) model for the rows of ``X``.

    Parameters
    ----------
    model : Pipeline or classifier
        A fitted pipeline ending in a :class:`~thyronet.ClassifierSelector` or a
        classifier (see :class:`ShapExplainer`).
    X : DataFrame or array-like
        Rows to explain (the cohort table for the combined model).
    background : DataFrame or array-like, optional
        Population baseline (usually the training cohort); ``X`` by default.
    algorithm : {"auto", "tree", "linear", "permutation"}, default="auto"
        ``"auto"`` follows the classifier: tree for LightGBM, linear for logistic
        regression, permutation for naive Bayes and others.
    max_background : int, default=100
    max_evals : int or "auto", default="auto"
    random_state : int, default=0
    verbose : bool, default=False

    Returns
    -------
    shap.Explanation
        Values in log-odds of ``classes_[1]`` (see :class:`ShapExplainer`), one
        row per row of ``X``, named with ``model[:-1].get_feature_names_out()``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from thyronet.explain import shap_explain
    >>> X, y = make_classification(n_samples=80, n_features=3, n_redundant=0,
    ...                            random_state=0)
    >>> explanation = shap_explain(GaussianNB().fit(X, y), X[:4], background=X)
    >>> explanation.values.shape, explanation.feature_names
    ((4, 3), ['x0', 'x1', 'x2'])
    """
    explainer = ShapExplainer(
        model,
        X if background is None else background,
        algorithm=algorithm,
        max_background=max_background,
        max_evals=max_evals,
        random_state=random_state,
        verbose=verbose,
    )
    return explainer(X)

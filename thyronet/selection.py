"""Feature selection steps of the combined model: univariate P values, then LASSO.

The paper keeps, among the standardised deep + clinical features, those whose
univariate test against the label is significant, then reduces them with LASSO
(Li et al. 2026, "Development of the combined model"). Both steps are
scikit-learn selectors (:class:`~sklearn.feature_selection.SelectorMixin`), so
they fit on the training fold only inside a :class:`~sklearn.pipeline.Pipeline`
and name the surviving features through ``get_feature_names_out()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, _fit_context
from sklearn.feature_selection import SelectorMixin
from sklearn.linear_model import Lasso, LogisticRegression, MultiTaskLasso, lasso_path
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["LassoSelector", "PValueSelector"]


# --------------------------------------------------------------------------- helpers
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


def _class_cv(cv, y_codes: np.ndarray, owner: str):
    """``check_cv`` for a classification target, with integer folds capped by class size.

    With an integer ``cv`` the folds are stratified; when the smallest class has
    fewer members than ``cv``, the number of folds is lowered to that size so every
    validation fold holds every class (at least 2 folds, otherwise an error).
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
    return check_cv(cv, y_codes, classifier=True)


def _resolve_discrete(discrete, X: np.ndarray, feature_names, max_levels: int) -> np.ndarray:
    """Boolean mask of the features treated as categorical."""
    n_features = X.shape[1]
    if isinstance(discrete, str):  # "auto" (the only string option)
        return np.array([np.unique(X[:, j]).size <= max_levels for j in range(n_features)])
    if isinstance(discrete, bool | np.bool_):
        return np.full(n_features, bool(discrete))
    values = np.asarray(discrete)
    if values.ndim != 1:
        raise ValueError("discrete_features must be 'auto', a bool, or a 1-D sequence")
    if values.size == 0:
        return np.zeros(n_features, dtype=bool)
    if values.dtype == bool:
        if values.size != n_features:
            raise ValueError(
                f"discrete_features is a boolean mask of length {values.size}, "
                f"but X has {n_features} features"
            )
        return values.copy()
    mask = np.zeros(n_features, dtype=bool)
    if values.dtype.kind in "iu":
        bad = values[(values < -n_features) | (values >= n_features)]
        if bad.size:
            raise ValueError(
                f"discrete_features holds indices {bad.tolist()} out of range for "
                f"{n_features} features"
            )
        mask[values] = True
        return mask
    if values.dtype.kind in "UO":
        if feature_names is None:
            raise ValueError(
                "discrete_features names features, but X has no feature names "
                "(fit on a DataFrame, or pass indices or a boolean mask)"
            )
        names = list(feature_names)
        unknown = [v for v in values.tolist() if v not in names]
        if unknown:
            raise ValueError(f"discrete_features names unknown feature(s) {unknown}; X has {names}")
        mask[[names.index(v) for v in values.tolist()]] = True
        return mask
    raise ValueError(
        f"discrete_features must be 'auto', a bool, a boolean mask, indices or names; "
        f"got dtype {values.dtype}"
    )


def _continuous_pvalue(x: np.ndarray, y_codes: np.ndarray, n_classes: int, test: str):
    groups = [x[y_codes == k] for k in range(n_classes)]
    if np.ptp(x) == 0:
        return 1.0, "constant"
    if test == "mannwhitneyu":
        if n_classes == 2:
            return float(stats.mannwhitneyu(*groups, alternative="two-sided").pvalue), test
        return float(stats.kruskal(*groups).pvalue), "kruskal"
    # Welch: unequal variances.
    if all(np.ptp(g) == 0 for g in groups):  # every class constant, but not all equal
        return 0.0, "welch"
    with warnings.catch_warnings():
        # A class with a single sample has no variance estimate: P is undefined (NaN).
        warnings.simplefilter("ignore", RuntimeWarning)
        if n_classes == 2:
            p = stats.ttest_ind(*groups, equal_var=False).pvalue
        else:
            p = stats.f_oneway(*groups, equal_var=False).pvalue
    p = float(p)
    return (1.0 if np.isnan(p) else p), "welch" if n_classes == 2 else "welch_anova"


def _categorical_pvalue(x: np.ndarray, y_codes: np.ndarray, n_classes: int):
    levels, level_codes = np.unique(x, return_inverse=True)
    if levels.size < 2:
        return 1.0, "constant"
    table = np.zeros((levels.size, n_classes), dtype=np.int64)
    np.add.at(table, (level_codes, y_codes), 1)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    if table.shape == (2, 2) and expected.min() < 5:
        return float(stats.fisher_exact(table).pvalue), "fisher"
    return float(stats.chi2_contingency(table).pvalue), "chi2"


# --------------------------------------------------------------------------- P values
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


class PValueSelector(_Selector):
    """Keep the features whose univariate test against the label has ``P < alpha``.

    Each feature is tested on its own against the class label, on the data
    passed to :meth:`fit` only (inside a pipeline: the training fold):

    - continuous features: Mann-Whitney U (``continuous_test="mannwhitneyu"``,
      the default) or Welch's unequal-variance t test (``"welch"``); with more
      than two classes, Kruskal-Wallis or Welch's ANOVA;
    - categorical features (binary, ordinal or one-hot columns): the chi-square
      test of the feature-level x class table, or Fisher's exact test for a 2 x 2
      table with an expected count below 5.

    Which features are categorical is set by ``discrete_features``. A constant
    feature gets ``P = 1``; so does a Welch test that cannot be computed (a class
    with a single sample). P values are invariant to standardisation, so the
    selector may follow a :class:`~sklearn.preprocessing.StandardScaler`.

    Parameters
    ----------
    alpha : float, default=0.05
        Keep features with (adjusted) ``P < alpha``.
    continuous_test : {"mannwhitneyu", "welch"}, default="mannwhitneyu"
        Test for continuous features.
    discrete_features : "auto", bool, or array-like, default="auto"
        Categorical features. ``"auto"``: features with at most ``max_levels``
        distinct values in the training data. ``True``/``False``: all/none. Or a
        boolean mask, integer indices, or feature names (with a DataFrame ``X``).
    max_levels : int, default=5
        Distinct-value threshold of ``discrete_features="auto"``.
    correction : {None, "bonferroni", "fdr_bh"}, default=None
        Multiple-testing adjustment before comparing to ``alpha`` (the paper uses
        none). ``"fdr_bh"`` is Benjamini-Hochberg.
    min_features : int, default=1
        If fewer features pass, keep the ``min_features`` with the smallest P
        values instead (``n_significant_`` tells how many passed). With
        ``min_features=0`` a fit where no feature passes raises a ``ValueError``
        instead of returning nothing.

    Attributes
    ----------
    pvalues_ : ndarray of shape (n_features_in_,)
        Raw P value of each feature.
    adjusted_pvalues_ : ndarray of shape (n_features_in_,)
        P values after ``correction`` (equal to ``pvalues_`` without correction).
    tests_ : ndarray of str, shape (n_features_in_,)
        The test used for each feature (``"mannwhitneyu"``, ``"welch"``,
        ``"kruskal"``, ``"welch_anova"``, ``"chi2"``, ``"fisher"``, ``"constant"``).
    discrete_mask_ : ndarray of bool, shape (n_features_in_,)
        Features treated as categorical.
    n_significant_ : int
        Number of features with adjusted ``P < alpha``.
    support_ : ndarray of bool, shape (n_features_in_,)
        Kept features.
    classes_ : ndarray
        Class labels seen in fit.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of str
        Names of the features seen in fit (only when ``X`` has string column names).

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.selection import PValueSelector
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 50)
    >>> X = np.column_stack([y + rng.normal(size=100), rng.normal(size=100),
    ...                      (rng.random(100) < 0.2 + 0.6 * y).astype(float)])
    >>> selector = PValueSelector().fit(X, y)
    >>> selector.get_support().tolist()
    [True, False, True]
    >>> selector.tests_.tolist()
    ['mannwhitneyu', 'mannwhitneyu', 'chi2']
    """

    _parameter_constraints: ClassVar[dict] = {
        "alpha": [Interval(Real, 0, 1, closed="right")],
        "continuous_test": [StrOptions({"mannwhitneyu", "welch"})],
        "discrete_features": [StrOptions({"auto"}), "boolean", "array-like"],
        "max_levels": [Interval(Integral, 1, None, closed="left")],
        "correction": [None, StrOptions({"bonferroni", "fdr_bh"})],
        "min_features": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        alpha: float = 0.05,
        *,
        continuous_test: str = "mannwhitneyu",
        discrete_features: str | bool | Sequence = "auto",
        max_levels: int = 5,
        correction: str | None = None,
        min_features: int = 1,
    ) -> None:
        self.alpha = alpha
        self.continuous_test = continuous_test
        self.discrete_features = discrete_features
        self.max_levels = max_levels
        self.correction = correction
        self.min_features = min_features

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y) -> PValueSelector:
        """Test every feature against ``y`` and choose the features to keep.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).

        Returns
        -------
        self : PValueSelector
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        self.classes_, codes = _check_classes(y, type(self).__name__)
        n_classes = self.classes_.size
        self.discrete_mask_ = _resolve_discrete(
            self.discrete_features, X, getattr(self, "feature_names_in_", None), self.max_levels
        )
        pvalues = np.empty(X.shape[1])
        tests = []
        for j in range(X.shape[1]):
            if self.discrete_mask_[j]:
                p, test = _categorical_pvalue(X[:, j], codes, n_classes)
            else:
                p, test = _continuous_pvalue(X[:, j], codes, n_classes, self.continuous_test)
            pvalues[j] = p
            tests.append(test)
        self.pvalues_ = pvalues
        self.tests_ = np.asarray(tests)
        if self.correction == "bonferroni":
            adjusted = np.minimum(pvalues * pvalues.size, 1.0)
        elif self.correction == "fdr_bh":
            adjusted = stats.false_discovery_control(pvalues, method="bh")
        else:
            adjusted = pvalues.copy()
        self.adjusted_pvalues_ = adjusted

        support = adjusted < self.alpha
        self.n_significant_ = int(support.sum())
        if self.n_significant_ < self.min_features:
            keep = np.argsort(adjusted, kind="stable")[: self.min_features]
            support = np.zeros_like(support)
            support[keep] = True
        if not support.any():
            best = int(np.argmin(adjusted))
            raise ValueError(
                f"PValueSelector (P-value filter) kept no feature: none of the "
                f"{X.shape[1]} features has P < alpha={self.alpha} (smallest P = "
                f"{adjusted[best]:.3g}, feature {self._name(best)!r}). Raise `alpha`, or set "
                f"`min_features` to keep the features with the smallest P values."
            )
        self.support_ = support
        return self

    def _name(self, j: int) -> str:
        names = getattr(self, "feature_names_in_", None)
        return str(names[j]) if names is not None else f"x{j}"


# --------------------------------------------------------------------------- LASSO
class LassoSelector(_Selector):
    """Keep the features with non-zero LASSO coefficients, strength chosen by CV.

    - ``method="lasso"`` (default): LASSO *regression* of the 0/1 label on the
      features, as radiomics platforms do (a multi-task LASSO on the one-hot
      label with more than two classes).
    - ``method="logistic"``: L1-penalised logistic regression
      (``LogisticRegression(l1_ratio=1.0)``, solver ``"liblinear"`` for two
      classes, which slightly penalises the intercept too, ``"saga"``
      multinomial for more, which converges quickly only on standardised
      features).

    Both use one regularisation grid ``alphas_`` on the scale of the LASSO
    ``alpha`` (penalty per sample); for ``"logistic"`` the equivalent inverse
    strength is ``C = 1 / (alpha * n_samples)``. The default grid runs from the
    smallest alpha that zeroes every coefficient down to ``eps`` times it. The
    path is fitted on every (stratified) CV fold and scored on the held-out part
    (mean squared error for ``"lasso"``, log loss for ``"logistic"``; lower is
    better); ``selection`` picks the alpha with the lowest mean CV error
    (``"min"``) or the largest alpha within one standard error of it (``"1se"``,
    sparser). The model is then refitted on all the data at that alpha.

    Parameters
    ----------
    method : {"lasso", "logistic"}, default="lasso"
        Penalised model.
    alphas : int or array-like, default=100
        Number of grid points, or the grid itself (positive values).
    eps : float, default=1e-3
        Ratio of the smallest to the largest alpha of the automatic grid.
    cv : int, cross-validation generator or iterable, default=5
        CV splitting. An integer gives stratified folds, lowered to the size of
        the smallest class when that is smaller.
    selection : {"min", "1se"}, default="min"
        Rule for choosing ``alpha_`` from the CV curve.
    max_features : int or None, default=None
        Keep at most this many features (largest absolute coefficients).
    min_features : int, default=1
        If fewer coefficients are non-zero at ``alpha_``, keep the
        ``min_features`` features that enter the LASSO path first (largest
        alpha at which they become non-zero) instead; ``n_nonzero_`` tells how
        many were non-zero. With ``min_features=0`` a fit that zeroes every
        coefficient raises a ``ValueError`` instead of returning nothing.
    max_iter : int, default=1000
        Iterations of each solver run.
    tol : float, default=1e-4
        Solver tolerance.

    Attributes
    ----------
    estimator_ : Lasso, MultiTaskLasso or LogisticRegression
        The model refitted on all the data at ``alpha_``.
    alpha_ : float
        Chosen regularisation strength.
    C_ : float
        ``1 / (alpha_ * n_samples)``: the strength as ``LogisticRegression``'s ``C``.
    coef_ : ndarray of shape (n_features_in_,) or (n_classes, n_features_in_)
        Coefficients of ``estimator_``.
    alphas_ : ndarray of shape (n_alphas,)
        The grid, in decreasing order.
    coef_path_ : ndarray of shape (n_features_in_, n_alphas) or \
            (n_classes, n_features_in_, n_alphas)
        Coefficients along the grid fitted on all the data (the LASSO path figure).
    cv_scores_ : ndarray of shape (n_alphas, n_splits)
        Held-out error of every alpha on every fold.
    cv_mean_, cv_std_ : ndarray of shape (n_alphas,)
        Mean and standard deviation of ``cv_scores_`` over folds (the CV curve).
    cv_metric_ : str
        ``"mse"`` or ``"log_loss"``.
    n_iter_ : int or ndarray
        Solver iterations of ``estimator_``.
    n_nonzero_ : int
        Number of non-zero coefficients at ``alpha_``.
    support_ : ndarray of bool, shape (n_features_in_,)
        Kept features.
    classes_ : ndarray
        Class labels seen in fit.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of str
        Names of the features seen in fit (only when ``X`` has string column names).

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.selection import LassoSelector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 6))
    >>> y = (X[:, 0] + X[:, 1] + 0.3 * rng.normal(size=120) > 0).astype(int)
    >>> selector = LassoSelector(max_features=2).fit(X, y)
    >>> selector.get_support(indices=True).tolist()
    [0, 1]
    >>> selector.cv_mean_.shape == selector.alphas_.shape
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "method": [StrOptions({"lasso", "logistic"})],
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "eps": [Interval(Real, 0, 1, closed="neither")],
        "cv": ["cv_object"],
        "selection": [StrOptions({"min", "1se"})],
        "max_features": [None, Interval(Integral, 1, None, closed="left")],
        "min_features": [Interval(Integral, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        method: str = "lasso",
        *,
        alphas: int | Sequence[float] = 100,
        eps: float = 1e-3,
        cv=5,
        selection: str = "min",
        max_features: int | None = None,
        min_features: int = 1,
        max_iter: int = 1000,
        tol: float = 1e-4,
    ) -> None:
        self.method = method
        self.alphas = alphas
        self.eps = eps
        self.cv = cv
        self.selection = selection
        self.max_features = max_features
        self.min_features = min_features
        self.max_iter = max_iter
        self.tol = tol

    # -- the path --------------------------------------------------------------
    def _targets(self, codes: np.ndarray, n_classes: int) -> np.ndarray:
        if n_classes == 2:
            return codes.astype(np.float64)
        return np.eye(n_classes)[codes]

    def _grid(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        if not isinstance(self.alphas, Integral):
            grid = np.asarray(self.alphas, dtype=np.float64).ravel()
            if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
                raise ValueError(f"alphas must be positive finite numbers; got {self.alphas!r}")
            return np.sort(grid)[::-1]
        Xc = X - X.mean(0)
        Yc = (Y - Y.mean(0)).reshape(len(Y), -1)
        # Smallest alpha with an all-zero solution (intercept fitted): the same
        # bound for least squares and for the mean logistic loss.
        corr = np.abs(Xc.T @ Yc) / len(X)
        alpha_max = float(np.sqrt((corr**2).sum(1)).max() if Yc.shape[1] > 1 else corr.max())
        alpha_max = max(alpha_max, np.finfo(np.float64).eps)
        if self.alphas == 1:
            return np.array([alpha_max])
        return np.geomspace(alpha_max, alpha_max * self.eps, num=int(self.alphas))

    def _path(self, X, Y, y_labels, alphas):
        """Coefficients (n_outputs, n_features, n_alphas) and a predictor for each alpha."""
        if self.method == "lasso":
            x_mean, y_mean = X.mean(0), Y.mean(0)
            Yc = Y - y_mean
            _, coefs, _ = lasso_path(
                X - x_mean, Yc, alphas=alphas, max_iter=self.max_iter, tol=self.tol
            )
            coefs = coefs.reshape(-1, X.shape[1], alphas.size)  # (n_outputs, p, n_alphas)

            def predict(X_new, k):
                return (X_new - x_mean) @ coefs[:, :, k].T + y_mean

            return coefs, predict
        model = self._logistic(len(np.unique(y_labels)), warm_start=True)
        coefs, models = [], []
        for alpha in alphas:
            model.set_params(C=1.0 / (alpha * len(X)))
            model.fit(X, y_labels)
            coefs.append(model.coef_.copy())
            models.append((model.coef_.copy(), model.intercept_.copy(), model.classes_))
        coefs = np.stack(coefs, axis=-1)  # (n_outputs, p, n_alphas)

        def predict_proba(X_new, k):
            coef, intercept, _ = models[k]
            z = X_new @ coef.T + intercept
            if z.shape[1] == 1:
                p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
                return np.column_stack([1.0 - p1, p1])
            z = z - z.max(1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(1, keepdims=True)

        return coefs, predict_proba

    def _logistic(self, n_classes: int, **params) -> LogisticRegression:
        # liblinear converges reliably for L1 on unscaled binary problems; saga handles
        # the multinomial case (and needs standardised features to converge quickly).
        if n_classes == 2:
            return LogisticRegression(
                l1_ratio=1.0, solver="liblinear", max_iter=self.max_iter, tol=self.tol, **params
            )
        return LogisticRegression(
            l1_ratio=1.0, solver="saga", max_iter=self.max_iter, tol=self.tol, **params
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y) -> LassoSelector:
        """Fit the regularisation path on CV folds, choose ``alpha_``, refit, select.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features (standardise them first: the penalty is scale dependent).
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).

        Returns
        -------
        self : LassoSelector
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        owner = type(self).__name__
        self.classes_, codes = _check_classes(y, owner)
        n_classes = self.classes_.size
        Y = self._targets(codes, n_classes)
        alphas = self._grid(X, Y)
        cv = _class_cv(self.cv, codes, owner)

        scores = []
        for train, test in cv.split(X, codes):
            if np.unique(codes[train]).size < n_classes:
                raise ValueError(
                    f"{owner}: a CV training fold lacks a class; use stratified folds (an "
                    f"integer `cv`)"
                )
            _, predict = self._path(X[train], Y[train], codes[train], alphas)
            fold = np.empty(alphas.size)
            for k in range(alphas.size):
                if self.method == "lasso":
                    fold[k] = np.mean(
                        (
                            predict(X[test], k).reshape(len(test), -1)
                            - Y[test].reshape(len(test), -1)
                        )
                        ** 2
                    )
                else:
                    proba = predict(X[test], k)[np.arange(len(test)), codes[test]]
                    fold[k] = -np.mean(np.log(np.clip(proba, 1e-15, None)))  # log loss
            scores.append(fold)
        self.cv_scores_ = np.column_stack(scores)
        self.cv_mean_ = self.cv_scores_.mean(1)
        self.cv_std_ = self.cv_scores_.std(1)
        self.cv_metric_ = "mse" if self.method == "lasso" else "log_loss"
        best = int(np.argmin(self.cv_mean_))
        if self.selection == "1se":
            limit = self.cv_mean_[best] + self.cv_std_[best] / np.sqrt(self.cv_scores_.shape[1])
            best = int(np.flatnonzero(self.cv_mean_ <= limit)[0])  # largest such alpha
        self.alphas_ = alphas
        self.alpha_ = float(alphas[best])
        self.C_ = 1.0 / (self.alpha_ * X.shape[0])

        path, _ = self._path(X, Y, codes, alphas)
        self.coef_path_ = path[0] if path.shape[0] == 1 else path

        if self.method == "lasso":
            model = (Lasso if n_classes == 2 else MultiTaskLasso)(
                alpha=self.alpha_, max_iter=self.max_iter, tol=self.tol
            )
            self.estimator_ = model.fit(X, Y)
            self.coef_ = self.estimator_.coef_.copy()
        else:
            self.estimator_ = self._logistic(n_classes, C=self.C_).fit(X, y)
            coef = self.estimator_.coef_
            self.coef_ = coef[0].copy() if coef.shape[0] == 1 else coef.copy()

        self.n_iter_ = self.estimator_.n_iter_
        importance = (
            np.abs(self.coef_) if self.coef_.ndim == 1 else np.linalg.norm(self.coef_, axis=0)
        )
        support = importance > 0
        self.n_nonzero_ = int(support.sum())
        # Order of entry into the path: the largest alpha at which a coefficient is non-zero.
        on_path = np.abs(path).max(0) > 0  # (p, n_alphas)
        entry = np.where(on_path.any(1), alphas[np.argmax(on_path, axis=1)], 0.0)
        if self.n_nonzero_ < self.min_features:
            order = np.lexsort((np.arange(entry.size), -entry))  # earliest entry first
            support = np.zeros_like(support)
            support[order[: self.min_features]] = True
            importance = entry
        if self.max_features is not None and support.sum() > self.max_features:
            ranked = np.lexsort((np.arange(entry.size), -entry, -importance))
            ranked = ranked[support[ranked]]
            support = np.zeros_like(support)
            support[ranked[: self.max_features]] = True
        if not support.any():
            raise ValueError(
                f"LassoSelector (LASSO step, method={self.method!r}) kept no feature: every "
                f"coefficient is zero at the CV-chosen alpha_={self.alpha_:.3g}. Use "
                f"selection='min' or a grid of smaller `alphas`, or set `min_features` to keep "
                f"the features that enter the LASSO path first."
            )
        self.support_ = support
        return self

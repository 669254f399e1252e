"""LASSO step of the combined model: keep the features with non-zero coefficients at a
cross-validated strength (the minimum CV error or the 1-SE rule)."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import _fit_context
from sklearn.linear_model import (
    Lasso,
    LassoCV,
    LogisticRegression,
    MultiTaskLasso,
    MultiTaskLassoCV,
    lasso_path,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from thyronet.selection._common import _check_classes, _class_cv, _Selector

__all__ = ["LassoSelector"]


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
        Rule for choosing ``alpha_`` from the CV curve: its minimum, or (``"1se"``)
        the largest alpha within one standard error of it, the standard error as
        glmnet computes it (fold standard deviation with ``ddof=1`` over
        ``sqrt(n_folds)``).
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
    verbose : int, default=0
        Verbosity of the solvers (``LassoCV``'s path, the logistic solver).
    random_state : int, RandomState or None, default=None
        Shuffles the folds of an integer ``cv`` (``None``: folds in row order, not
        shuffled); the study passes its seed.

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
        Mean and standard deviation (``ddof=1``, as glmnet) of ``cv_scores_`` over folds.
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
        "verbose": ["verbose"],
        "random_state": ["random_state"],
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
        verbose: int = 0,
        random_state=None,
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
        self.verbose = verbose
        self.random_state = random_state

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

    def _path(self, X, Y, y_labels, alphas) -> np.ndarray:
        """Coefficients (n_outputs, n_features, n_alphas) along ``alphas`` fitted on all of X."""
        if self.method == "lasso":
            _, coefs, _ = lasso_path(
                X - X.mean(0), Y - Y.mean(0), alphas=alphas, max_iter=self.max_iter, tol=self.tol
            )
            return coefs.reshape(-1, X.shape[1], alphas.size)
        return self._logistic_path(X, y_labels, alphas)[0]

    def _logistic_path(self, X, y_labels, alphas):
        """L1-logistic coefficients (n_outputs, p, n_alphas), warm-started down the grid,
        and a ``predict_proba(X_new, k)`` for the k-th alpha."""
        model = self._logistic(len(np.unique(y_labels)), warm_start=True)
        coefs, models = [], []
        for alpha in alphas:
            model.set_params(C=1.0 / (alpha * len(X)))
            model.fit(X, y_labels)
            coefs.append(model.coef_.copy())
            models.append((model.coef_.copy(), model.intercept_.copy()))

        def predict_proba(X_new, k):
            coef, intercept = models[k]
            z = X_new @ coef.T + intercept
            if z.shape[1] == 1:
                p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
                return np.column_stack([1.0 - p1, p1])
            z = z - z.max(1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(1, keepdims=True)

        return np.stack(coefs, axis=-1), predict_proba

    def _cv_errors(self, X, Y, codes, alphas, splits) -> np.ndarray:
        """Held-out error (n_alphas, n_splits): MSE through ``LassoCV`` /
        ``MultiTaskLassoCV``, or the log loss of the L1-logistic path.

        ``LogisticRegressionCV`` is not used: it fits one ``C`` grid on every fold,
        whereas this path keeps the per-sample penalty ``alpha`` fixed, i.e.
        ``C = 1 / (alpha * n_train)`` for each fold's size.
        """
        if self.method == "lasso":
            search = (LassoCV if Y.ndim == 1 else MultiTaskLassoCV)(
                alphas=alphas,
                cv=splits,
                max_iter=self.max_iter,
                tol=self.tol,
                verbose=self.verbose,
            )
            # mse_path_ is squeezed: (n_folds,) for a single alpha
            return search.fit(X, Y).mse_path_.reshape(alphas.size, len(splits))
        scores = []
        for train, test in splits:
            _, predict_proba = self._logistic_path(X[train], codes[train], alphas)
            fold = np.empty(alphas.size)
            for k in range(alphas.size):
                proba = predict_proba(X[test], k)[np.arange(len(test)), codes[test]]
                fold[k] = -np.mean(np.log(np.clip(proba, 1e-15, None)))  # log loss
            scores.append(fold)
        return np.column_stack(scores)

    def _logistic(self, n_classes: int, **params) -> LogisticRegression:
        # liblinear converges reliably for L1 on unscaled binary problems; saga handles
        # the multinomial case (and needs standardised features to converge quickly).
        if n_classes == 2:
            solver = "liblinear"
        else:
            solver = "saga"
        return LogisticRegression(
            l1_ratio=1.0,
            solver=solver,
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=self.verbose,
            **params,
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
        cv = _class_cv(self.cv, codes, owner, self.random_state)

        splits = list(cv.split(X, codes))
        if any(np.unique(codes[train]).size < n_classes for train, _ in splits):
            raise ValueError(
                f"{owner}: a CV training fold lacks a class; use stratified folds (an integer `cv`)"
            )
        self.cv_scores_ = self._cv_errors(X, Y, codes, alphas, splits)
        self.cv_mean_ = self.cv_scores_.mean(1)
        # glmnet's cvsd: the fold standard deviation with ddof=1 (one fold: 0)
        self.cv_std_ = self.cv_scores_.std(1, ddof=1) if len(splits) > 1 else 0 * self.cv_mean_
        self.cv_metric_ = "mse" if self.method == "lasso" else "log_loss"
        best = int(np.argmin(self.cv_mean_))
        if self.selection == "1se":
            # standard error of the mean CV error: fold std (ddof=1) over sqrt(n_splits)
            limit = self.cv_mean_[best] + self.cv_std_[best] / np.sqrt(self.cv_scores_.shape[1])
            best = int(np.flatnonzero(self.cv_mean_ <= limit)[0])  # largest such alpha
        self.alphas_ = alphas
        self.alpha_ = float(alphas[best])
        self.C_ = 1.0 / (self.alpha_ * X.shape[0])

        path = self._path(X, Y, codes, alphas)
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

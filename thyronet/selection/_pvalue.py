"""Univariate filter of the combined model: keep the features whose test against the label
has ``P < alpha`` (Mann-Whitney U / Welch for continuous features, chi-square / Fisher for
categorical ones)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy import stats
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from thyronet.selection._common import _check_classes, _Selector

__all__ = ["PValueSelector"]


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

"""Harrell's bootstrap optimism correction of a classifier's performance (``rms::validate``).

A model evaluated on the data it was fitted on looks better than it will on new
patients. Harrell's bootstrap estimates by how much: refit the whole model on
each bootstrap sample, evaluate that refit on its own sample (training) and on
the original data (test); the mean of training - test is the optimism, which is
subtracted from the apparent performance.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.base import clone, is_classifier
from sklearn.model_selection import KFold, StratifiedGroupKFold, StratifiedKFold
from sklearn.utils import _safe_indexing, check_random_state

from thyronet.metrics._validation import check_labels, check_positive_int

__all__ = ["bootstrap_validate"]

INDEXES = ("auc", "slope", "intercept", "brier")
_EPS = 1e-12  # probabilities are clipped to [eps, 1 - eps] before their logit is taken


def _logit(prob: np.ndarray) -> np.ndarray:
    p = np.clip(prob, _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def _recalibration(y: np.ndarray, lp: np.ndarray, max_iter: int = 100) -> tuple[float, float]:
    """Intercept ``a`` and slope ``b`` of the logistic fit ``y ~ a + b * lp`` (Newton-Raphson).

    Both come from one joint fit, as in ``rms::validate`` and ``rms::val.prob``
    (the intercept is not calibration-in-the-large). NaN when ``lp`` is constant
    or the fit does not converge (separation).
    """
    if np.ptp(lp) == 0:
        return np.nan, np.nan
    design = np.column_stack([np.ones(lp.size), lp])
    beta = np.array([0.0, 1.0])

    def deviance(b):
        eta = design @ b
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta))

    current = deviance(beta)
    for _ in range(max_iter):
        eta = design @ beta
        mu = 0.5 * (1.0 + np.tanh(0.5 * eta))  # the logistic function, overflow-free
        w = mu * (1.0 - mu)
        hessian = design.T @ (design * w[:, None])
        try:
            step = np.linalg.solve(hessian, design.T @ (y - mu))
        except np.linalg.LinAlgError:
            return np.nan, np.nan
        scale = 1.0
        while scale > 1e-10:  # step-halving keeps the deviance from increasing
            trial = beta + scale * step
            value = deviance(trial)
            if value <= current + 1e-12 * (1.0 + abs(current)):
                break
            scale *= 0.5
        beta, current = trial, value
        if np.max(np.abs(scale * step)) < 1e-10:
            return float(beta[0]), float(beta[1])
    return np.nan, np.nan


def _auc(y: np.ndarray, prob: np.ndarray) -> float:
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    ranks = rankdata(prob)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _indexes(y: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """``auc, slope, intercept, brier`` of probabilities ``prob`` for 0/1 outcomes ``y``."""
    intercept, slope = _recalibration(y, _logit(prob))
    return np.array([_auc(y, prob), slope, intercept, float(np.mean((prob - y) ** 2))])


def _positive_proba(model, X) -> np.ndarray:
    classes = list(model.classes_)
    return model.predict_proba(X)[:, classes.index(classes[-1])]


def _inner_cv_params(estimator) -> dict[str, int]:
    """The estimator's inner cross-validation folds: ``{param: n_splits}``.

    Every parameter named ``cv`` or ``<step>__cv`` holding an integer or a
    ``KFold`` / ``StratifiedKFold`` (LassoCV, GridSearchCV, thyronet's selectors);
    other splitters are the user's own and are left alone.
    """
    found = {}
    for name, value in estimator.get_params(deep=True).items():
        if name.rsplit("__", 1)[-1] != "cv":
            continue
        if isinstance(value, Integral) and not isinstance(value, bool):
            found[name] = int(value)
        elif isinstance(value, KFold | StratifiedKFold):
            found[name] = int(value.n_splits)
    return found


def _grouped_folds(y01: np.ndarray, idx: np.ndarray, n_splits: int, seed: int) -> list:
    """Stratified folds of a bootstrap sample that keep each subject's copies together."""
    groups_per_class = min(np.unique(idx[y01[idx] == c]).size for c in (0.0, 1.0))
    n_splits = max(2, min(n_splits, groups_per_class))
    folds = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
    return list(folds.split(idx, y01[idx], groups=idx))


def _optimism(estimator, X, y_fit, y01, samples, seeds, inner_cv) -> np.ndarray:
    """Training - test indexes of the refits on each bootstrap sample (one row per sample)."""
    out = np.empty((len(samples), len(INDEXES)))
    for k, (idx, seed) in enumerate(zip(samples, seeds, strict=True)):
        X_boot = _safe_indexing(X, idx)
        model = clone(estimator)
        if inner_cv:
            model.set_params(
                **{name: _grouped_folds(y01, idx, n, seed) for name, n in inner_cv.items()}
            )
        model.fit(X_boot, _safe_indexing(y_fit, idx))
        training = _indexes(y01[idx], _positive_proba(model, X_boot))
        test = _indexes(y01, _positive_proba(model, X))
        out[k] = training - test
    return out


def _bootstrap_samples(y01: np.ndarray, n_bootstrap: int, random_state) -> list[np.ndarray]:
    """Bootstrap index sets holding both classes (a sample with one class is drawn again)."""
    rng = check_random_state(random_state)
    n = y01.size
    samples = []
    while len(samples) < n_bootstrap:
        idx = rng.randint(n, size=n)
        if 0 < y01[idx].sum() < n:
            samples.append(idx)
    return samples


def bootstrap_validate(
    estimator,
    X,
    y,
    *,
    n_bootstrap: int = 200,
    random_state=None,
    n_jobs: int | None = None,
    group_inner_cv: bool = True,
) -> pd.DataFrame:
    """Harrell's bootstrap optimism correction, as ``rms::validate`` reports it.

    The estimator is fitted on all of ``X`` to give the apparent performance.
    Then, ``n_bootstrap`` times, a clone is refitted on a bootstrap sample (drawn
    with replacement, ``n`` subjects) and evaluated on that sample (training)
    and on the original data (test). The optimism is the mean of training -
    test over the samples, and ``corrected = apparent - optimism`` (Harrell,
    Lee & Mark, 1996; Steyerberg, *Clinical Prediction Models*, ch. 17).

    The whole estimator is refitted, so in a pipeline every step (scaling,
    feature selection, classifier choice) is part of what is validated.

    A bootstrap sample holds about 63 % of the subjects, many of them two or more
    times. A step that cross-validates inside the refit (LassoCV's ``cv``, a
    classifier chosen by CV) would put copies of one subject in both its training
    and its validation folds and so favour models that memorise (LightGBM over a
    logistic regression), inflating the optimism. With ``group_inner_cv`` (the
    default) each such ``cv`` (an integer, ``KFold`` or ``StratifiedKFold``
    parameter named ``cv`` or ``<step>__cv``) is replaced, for each refit, by
    stratified group folds of the same number that keep a subject's copies in one
    fold (``StratifiedGroupKFold``, seeded from ``random_state``). The apparent fit
    on the original data keeps the estimator's own folds. rms's ``validate`` has no
    inner cross-validation, so nothing there corresponds to this setting.

    Indexes, computed from the positive-class column of ``predict_proba``:

    - ``auc``: the C statistic (area under the ROC curve; ties count 1/2);
    - ``slope`` and ``intercept``: ``b`` and ``a`` of one logistic fit
      ``y ~ a + b * logit(p)``, as rms does (``logit(p)`` is the linear
      predictor of a logistic model; probabilities are clipped to
      ``[1e-12, 1 - 1e-12]`` first). The apparent values of an unpenalised
      logistic regression are 0 and 1 by construction;
    - ``brier``: the mean squared error of ``p``.

    Parameters
    ----------
    estimator : scikit-learn classifier or pipeline
        Unfitted (it is cloned); must have ``predict_proba``.
    X : array-like or DataFrame of shape (n_subjects, ...)
        Whatever ``estimator.fit`` takes (e.g. the cohort table for the
        thyronet pipelines).
    y : array-like of shape (n_subjects,)
        0/1 outcomes, 1 = positive. They are passed to ``fit`` as given.
    n_bootstrap : int, default=200
        Number of bootstrap refits (rms's ``B``; 200 is its usual minimum for
        the AUC, use 1,000 or more for stable slopes). A sample holding one
        class only is drawn again.
    random_state : int, RandomState or None
        Seed of the bootstrap samples. The result does not depend on ``n_jobs``.
    n_jobs : int or None
        Parallel jobs of the refits (joblib; ``-1`` = all cores).
    group_inner_cv : bool, default=True
        Keep each subject's bootstrap copies in one fold of the estimator's inner
        cross-validation (see above). ``False`` refits with the estimator's folds
        as they are.

    Returns
    -------
    DataFrame
        Index ``auc, slope, intercept, brier``; columns ``apparent, optimism,
        corrected``. ``attrs["n_bootstrap"]`` is the number of refits and
        ``attrs["n_failed"]`` the number whose recalibration fit did not
        converge (left out of the slope and intercept means);
        ``attrs["grouped_inner_cv"]`` names the ``cv`` parameters given grouped
        folds.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from thyronet.metrics import bootstrap_validate
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(150, 4))
    >>> y = (rng.uniform(size=150) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    >>> model = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-10)
    >>> table = bootstrap_validate(model, X, y, n_bootstrap=50, random_state=0)
    >>> list(table.index), list(table.columns)
    (['auc', 'slope', 'intercept', 'brier'], ['apparent', 'optimism', 'corrected'])
    >>> round(float(table.loc["slope", "apparent"]), 6)
    1.0
    >>> bool(table.loc["auc", "corrected"] < table.loc["auc", "apparent"])
    True
    """
    if not hasattr(estimator, "fit") or not hasattr(estimator, "predict_proba"):
        raise TypeError(
            f"estimator must be a scikit-learn classifier with predict_proba; "
            f"got {type(estimator).__name__}"
        )
    if not is_classifier(estimator):
        raise TypeError(f"estimator must be a classifier; got {type(estimator).__name__}")
    n_bootstrap = check_positive_int(n_bootstrap, "n_bootstrap")
    y01 = check_labels(y).astype(float)
    if len(X) != y01.size:
        raise ValueError(f"X has {len(X)} rows but y has {y01.size} values")
    y_fit = np.asarray(y)

    model = clone(estimator).fit(X, y_fit)
    apparent = _indexes(y01, _positive_proba(model, X))

    rng = check_random_state(random_state)
    samples = _bootstrap_samples(y01, n_bootstrap, rng)
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_bootstrap)  # after the samples
    inner_cv = _inner_cv_params(estimator) if group_inner_cv else {}
    n_chunks = 1 if n_jobs in (None, 1) else min(n_bootstrap, 8 * max(abs(int(n_jobs)), 2))
    chunks = [c for c in np.array_split(np.arange(n_bootstrap), n_chunks) if c.size]
    parts = Parallel(n_jobs=n_jobs)(
        delayed(_optimism)(
            estimator,
            X,
            y_fit,
            y01,
            [samples[i] for i in chunk],
            [int(seeds[i]) for i in chunk],
            inner_cv,
        )
        for chunk in chunks
    )
    differences = np.vstack(parts)
    failed = np.isnan(differences[:, 1]) | np.isnan(differences[:, 2])
    optimism = np.array(
        [
            differences[:, 0].mean(),
            differences[~failed, 1].mean() if (~failed).any() else np.nan,
            differences[~failed, 2].mean() if (~failed).any() else np.nan,
            differences[:, 3].mean(),
        ]
    )
    table = pd.DataFrame(
        {"apparent": apparent, "optimism": optimism, "corrected": apparent - optimism},
        index=pd.Index(INDEXES),
    )
    table.attrs.update(
        n_bootstrap=n_bootstrap, n_failed=int(failed.sum()), grouped_inner_cv=sorted(inner_cv)
    )
    return table

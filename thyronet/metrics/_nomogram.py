"""Nomogram of a fitted logistic-regression model: points per predictor value (``rms::nomogram``).

A logistic regression's log-odds are a sum of one term per feature, so each
feature gets a points scale, the points add up, and the total maps back to the
linear predictor and the probability. Linear steps before the classifier
(``StandardScaler``, feature selectors, ``ClassifierSelector`` or a search that
chose a logistic regression) are folded into the coefficients, so the scales
are in the units of the features that enter the first of those steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_selection import SelectorMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

__all__ = ["Nomogram", "nomogram"]

POINTS = 100.0
PROBABILITIES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)


@dataclass(frozen=True, eq=False)
class Nomogram:
    """Result of :func:`nomogram`: the points scales of a logistic-regression model.

    Attributes
    ----------
    predictors : DataFrame
        One row per predictor that reaches the classifier (non-zero
        coefficient), strongest first: ``coef`` (log-odds per unit of the
        predictor, the linear steps folded in), ``low`` and ``high`` (the range
        drawn) and ``max_points`` (points at the favourable end of the range;
        100 for the strongest predictor).
    scales : dict of str to DataFrame
        Per predictor, ``value`` and ``points`` of its tick marks.
    total_points : DataFrame
        Ticks of the total-points axis with their ``linear_predictor`` and
        ``probability``.
    probability_scale : DataFrame
        ``probability`` and the ``total_points`` that give it (within the
        reachable range).
    lp_at_zero : float
        Linear predictor (log-odds) at 0 total points.
    lp_per_point : float
        Log-odds per point: ``LP = lp_at_zero + lp_per_point * total``.
    transform : callable or None
        The pipeline steps before the linear part (e.g. the clinical encoder);
        :meth:`points` applies them to raw input.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from thyronet.metrics import nomogram
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = (X[:, 0] - 0.5 * X[:, 1] + rng.normal(size=200) > 0).astype(int)
    >>> nomo = nomogram(LogisticRegression().fit(X, y), X)
    >>> nomo.predictors.index.tolist(), float(nomo.predictors["max_points"].iloc[0])
    (['x0', 'x1'], 100.0)
    >>> p = nomo.probability(nomo.points(X[:3])["total"])
    >>> bool(np.allclose(p, LogisticRegression().fit(X, y).predict_proba(X[:3])[:, 1]))
    True
    """

    predictors: pd.DataFrame
    scales: dict[str, pd.DataFrame]
    total_points: pd.DataFrame
    probability_scale: pd.DataFrame
    lp_at_zero: float
    lp_per_point: float
    transform: Callable | None

    def points(self, X) -> pd.DataFrame:
        """Points of each predictor and their ``total`` for the subjects in ``X``.

        Parameters
        ----------
        X : array-like or DataFrame
            Raw input of the pipeline (what ``predict_proba`` takes).

        Returns
        -------
        DataFrame
            One column per predictor and ``total``; one row per subject.
        """
        Z = _as_frame(self.transform(X) if self.transform is not None else X, self._names_in)
        table = self.predictors
        values = Z[table.index].to_numpy(dtype=float)
        low_end = np.minimum(table["coef"] * table["low"], table["coef"] * table["high"])
        pts = (values * table["coef"].to_numpy() - low_end.to_numpy()) / self.lp_per_point
        out = pd.DataFrame(pts, columns=table.index, index=getattr(Z, "index", None))
        out["total"] = out.sum(axis=1)
        return out

    def linear_predictor(self, total) -> np.ndarray:
        """Log-odds at ``total`` points."""
        return self.lp_at_zero + self.lp_per_point * np.asarray(total, dtype=float)

    def probability(self, total) -> np.ndarray:
        """Predicted probability at ``total`` points."""
        return 1.0 / (1.0 + np.exp(-self.linear_predictor(total)))

    @property
    def _names_in(self) -> list[str]:
        return self.predictors.attrs["all_features"]


def _as_frame(Z, names: list[str]) -> pd.DataFrame:
    if isinstance(Z, pd.DataFrame):
        return Z.set_axis(names, axis=1)
    return pd.DataFrame(np.asarray(Z, dtype=float), columns=names)


def _chain(model) -> list[tuple[str, object]]:
    """The model as a flat list of steps, a search or selector replaced by its fitted winner."""
    if isinstance(model, Pipeline):
        return [s for name, step in model.steps for s in _chain_step(name, step)]
    return _chain_step(type(model).__name__, model)


def _chain_step(name: str, step) -> list[tuple[str, object]]:
    if step is None or step == "passthrough":
        return []
    if isinstance(step, Pipeline):
        return _chain(step)
    winner = getattr(step, "best_estimator_", None)
    if winner is not None and not isinstance(step, LogisticRegression):
        return _chain(winner)
    return [(name, step)]


def _no_linear_predictor(classifier) -> TypeError:
    kind = type(classifier).__name__
    why = {
        "LGBMClassifier": "its log-odds are a sum of trees, step functions of interacting "
        "features, not one straight line per predictor",
        "GaussianNB": "its log-odds are quadratic in each feature (a separate variance per "
        "class), not linear",
    }.get(kind, "it is not a logistic regression with an additive linear predictor")
    return TypeError(
        f"a nomogram needs a classifier whose log-odds are an additive linear function of "
        f"the features (a LogisticRegression); the model's classifier is {kind}: {why}"
    )


def _nice_ticks(low: float, high: float, target: int = 6) -> np.ndarray:
    if not high > low:
        return np.array([low])
    raw = (high - low) / target
    power = 10.0 ** np.floor(np.log10(raw))
    step = power * min((m for m in (1, 2, 2.5, 5, 10) if m * power >= raw), default=10)
    ticks = np.arange(np.ceil(low / step) * step, high + step * 1e-9, step)
    return np.round(ticks, 10)


def nomogram(model, X=None) -> Nomogram:
    """Points table of a fitted pipeline whose classifier is a logistic regression.

    As ``rms::nomogram``: the contribution ``coef * x`` of each predictor is
    shifted to 0 at the unfavourable end of its range and scaled so that the
    predictor with the widest range of contributions spans 0-100 points. The
    total points give the linear predictor ``lp_at_zero + lp_per_point *
    total`` and the probability ``1 / (1 + exp(-LP))``, exactly (for values
    outside the drawn range too).

    Steps before the classifier that are linear are folded into the
    coefficients: ``StandardScaler`` (``coef / scale``, intercept shifted by
    ``coef * mean / scale``), feature selectors (dropped features get no
    scale), and a :class:`~thyronet.ClassifierSelector` or search whose winner
    is a logistic regression (its ``best_estimator_``). The steps before those
    (e.g. :class:`~thyronet.clinical.ClinicalEncoder`) become
    :attr:`Nomogram.transform`, and the predictors are their output features
    (e.g. ``size``, ``location_isthmus``).

    Parameters
    ----------
    model : fitted estimator
        A ``LogisticRegression`` (binary), or a Pipeline ending in one or in a
        selector that chose one.
    X : array-like or DataFrame, optional
        Reference data (e.g. the training data, raw pipeline input) giving each
        predictor's range (min to max; 0/1 features get the ticks 0 and 1).
        Without it the range is mean +/- 2 SD from the first ``StandardScaler``
        of the linear part; a model without one needs ``X``.

    Returns
    -------
    Nomogram

    Raises
    ------
    TypeError
        When the classifier is not a logistic regression (LightGBM, naive
        Bayes, ...): those have no additive linear predictor to draw.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from thyronet.metrics import nomogram
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(50, 10, size=(200, 2))
    >>> y = (X[:, 0] + rng.normal(0, 10, 200) > 50).astype(int)
    >>> model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    >>> nomo = nomogram(model, X)
    >>> total = nomo.points(X)["total"]
    >>> bool(np.allclose(nomo.probability(total), model.predict_proba(X)[:, 1]))
    True
    """
    steps = _chain(model)
    if not steps:
        raise ValueError("the model has no steps")
    _, classifier = steps[-1]
    check_is_fitted(classifier)
    if not isinstance(classifier, LogisticRegression):
        raise _no_linear_predictor(classifier)
    if classifier.coef_.shape[0] != 1:
        raise ValueError(
            f"a nomogram draws one linear predictor: the logistic regression must be binary; "
            f"it has {len(classifier.classes_)} classes"
        )
    coef = classifier.coef_[0].astype(float)
    intercept = float(classifier.intercept_[0])
    start = len(steps) - 1
    scaler = None  # (mean, scale) of the earliest StandardScaler of the linear part
    while start > 0:
        _, step = steps[start - 1]
        if isinstance(step, StandardScaler):
            scale = step.scale_ if step.scale_ is not None else np.ones(coef.size)
            mean = step.mean_ if step.mean_ is not None else np.zeros(coef.size)
            if not step.with_mean:
                mean = np.zeros(coef.size)
            coef = coef / scale
            intercept -= float(np.sum(coef * mean))
            scaler = (mean, scale)
        elif isinstance(step, SelectorMixin):
            full = np.zeros(step.get_support().size)
            full[step.get_support()] = coef
            coef = full
        else:
            break
        start -= 1
    head = Pipeline(steps[:start]) if start > 0 else None
    first = steps[start][1]
    if head is not None:
        names = [str(n) for n in head.get_feature_names_out()]
    elif hasattr(first, "feature_names_in_"):
        names = [str(n) for n in first.feature_names_in_]
    else:
        names = [f"x{i}" for i in range(coef.size)]

    if X is not None:
        Z = _as_frame(head.transform(X) if head is not None else X, names).astype(float)
        low, high = Z.min().to_numpy(), Z.max().to_numpy()
        binary = Z.isin([0.0, 1.0]).all().to_numpy()
    elif scaler is not None and isinstance(first, StandardScaler):
        mean, scale = scaler
        low, high = mean - 2 * scale, mean + 2 * scale
        binary = np.zeros(coef.size, dtype=bool)
    else:
        raise ValueError(
            "pass X (e.g. the training data) to set the range of each predictor; the model "
            "has no StandardScaler in front of its linear part to take it from"
        )
    keep = coef != 0
    if not keep.any():
        raise ValueError("every coefficient is zero: the model has no predictor to draw")
    spans = np.abs(coef) * (high - low)
    lp_per_point = float(spans[keep].max()) / POINTS
    if lp_per_point <= 0:
        raise ValueError("the predictors do not vary in X: no points scale can be drawn")
    low_end = np.minimum(coef * low, coef * high)
    predictors = pd.DataFrame(
        {"coef": coef, "low": low, "high": high, "max_points": spans / lp_per_point},
        index=pd.Index(names, name="predictor"),
    )[keep].sort_values("max_points", ascending=False, kind="stable")
    predictors.attrs["all_features"] = names
    scales = {}
    for j in np.flatnonzero(keep):
        values = np.array([0.0, 1.0]) if binary[j] else _nice_ticks(low[j], high[j])
        points = (coef[j] * values - low_end[j]) / lp_per_point
        scales[names[j]] = pd.DataFrame({"value": values, "points": points})
    lp_at_zero = intercept + float(low_end[keep].sum())
    most = float(predictors["max_points"].sum())
    totals = _nice_ticks(0.0, most)
    lp = lp_at_zero + lp_per_point * totals
    total_points = pd.DataFrame(
        {"total_points": totals, "linear_predictor": lp, "probability": 1 / (1 + np.exp(-lp))}
    )
    probs = np.array(PROBABILITIES)
    at = (np.log(probs / (1 - probs)) - lp_at_zero) / lp_per_point
    inside = (at >= 0) & (at <= most)
    probability_scale = pd.DataFrame({"probability": probs[inside], "total_points": at[inside]})
    return Nomogram(
        predictors=predictors,
        scales=scales,
        total_points=total_points,
        probability_scale=probability_scale,
        lp_at_zero=lp_at_zero,
        lp_per_point=lp_per_point,
        transform=head.transform if head is not None else None,
    )

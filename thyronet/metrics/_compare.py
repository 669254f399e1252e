"""Comparing models: AUC tables, pairwise DeLong tests and per-cohort results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from thyronet.metrics._delong import _auc_and_covariance, _paired_from_covariance
from thyronet.metrics._roc import roc_auc_ci, youden_threshold
from thyronet.metrics._summary import BinarySummary, _check_threshold, binary_summary
from thyronet.metrics._validation import (
    check_confidence,
    check_labels,
    check_min_per_class,
    check_scores,
)
from thyronet.schema import COHORTS

__all__ = ["ModelComparison", "compare_models", "evaluate_cohorts"]


def _format_ci(value: float, low: float, high: float, digits: int = 3) -> str:
    return f"{value:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _check_models(scores, n: int) -> dict[str, np.ndarray]:
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError(
            "scores must be a non-empty mapping {model name: scores}; got "
            f"{type(scores).__name__}"
        )
    return {str(name): check_scores(s, f"scores[{name!r}]", n=n) for name, s in scores.items()}


@dataclass(frozen=True, eq=False)
class ModelComparison:
    """Result of :func:`compare_models`.

    Attributes
    ----------
    auc : DataFrame
        Index: model. Columns ``auc, ci_low, ci_high, variance`` and the text
        ``"AUC (95% CI)"`` (its label follows ``confidence``).
    p_values : DataFrame
        Symmetric model x model matrix of paired DeLong P values (NaN on the
        diagonal).
    pairs : DataFrame
        One row per pair: ``model_a, model_b, difference, ci_low, ci_high, z,
        p_value``.

    Examples
    --------
    >>> from thyronet.metrics import compare_models
    >>> y = [0, 0, 1, 1, 0, 1]
    >>> cmp = compare_models(y, {"a": [1, 2, 3, 6, 4, 5], "b": [2, 1, 4, 3, 6, 5]})
    >>> cmp.pairs[["model_a", "model_b"]].values.tolist()
    [['a', 'b']]
    """

    auc: pd.DataFrame
    p_values: pd.DataFrame
    pairs: pd.DataFrame


def compare_models(
    y_true, scores: Mapping[str, object], *, confidence: float = 0.95
) -> ModelComparison:
    """AUC (DeLong CI) of each model and paired DeLong tests between every pair.

    All models score the same subjects, so the tests are paired
    (:func:`delong_test`); the placements of each model are computed once.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 labels, 1 = positive class.
    scores : mapping of str to array-like of shape (n_subjects,)
        ``{model name: scores}``, higher = more likely positive.
    confidence : float, default=0.95
        Level of the AUC intervals and of the intervals of the differences.

    Returns
    -------
    ModelComparison

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.metrics import compare_models
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> cmp = compare_models(y, {"good": y + rng.normal(0, 0.8, 300),
    ...                          "weak": y + rng.normal(0, 3, 300)})
    >>> list(cmp.auc.index), bool(cmp.p_values.loc["good", "weak"] < 0.05)
    (['good', 'weak'], True)
    """
    confidence = check_confidence(confidence)
    labels = check_labels(y_true)
    models = _check_models(scores, labels.size)
    check_min_per_class(labels, 2, "the DeLong tests")
    names = list(models)
    aucs, cov = _auc_and_covariance(labels, list(models.values()))
    crit = float(stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    half = crit * np.sqrt(np.diag(cov))
    low, high = np.clip(aucs - half, 0, 1), np.clip(aucs + half, 0, 1)
    label = f"AUC ({confidence:.0%} CI)"
    auc = pd.DataFrame(
        {
            "auc": aucs,
            "ci_low": low,
            "ci_high": high,
            "variance": np.diag(cov),
            label: [_format_ci(*v) for v in zip(aucs, low, high, strict=True)],
        },
        index=pd.Index(names, name="model"),
    )
    p_values = pd.DataFrame(np.nan, index=auc.index, columns=pd.Index(names, name="model"))
    rows = []
    for i, j in combinations(range(len(names)), 2):
        test = _paired_from_covariance(aucs, cov, i, j, confidence)
        p_values.iloc[i, j] = p_values.iloc[j, i] = test.p_value
        rows.append(
            {
                "model_a": names[i],
                "model_b": names[j],
                "difference": test.difference,
                "ci_low": test.ci_low,
                "ci_high": test.ci_high,
                "z": test.z,
                "p_value": test.p_value,
            }
        )
    pairs = pd.DataFrame(
        rows, columns=["model_a", "model_b", "difference", "ci_low", "ci_high", "z", "p_value"]
    )
    return ModelComparison(auc, p_values, pairs)


def _cohort_order(cohorts: np.ndarray) -> list:
    present = list(pd.unique(cohorts))
    if all(c in COHORTS for c in present):
        return [c for c in COHORTS if c in present]
    return present


def evaluate_cohorts(
    y_true,
    scores: Mapping[str, object],
    cohorts,
    *,
    threshold: float | str | Mapping[str, float] = 0.5,
    reference_cohort=None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The paper's results layout: per model and cohort, AUC (95% CI) and the threshold
    metrics (accuracy, sensitivity, specificity, PPV, NPV, F1) with Wilson 95% CIs.

    Parameters
    ----------
    y_true : array-like of shape (n_subjects,)
        0/1 labels, 1 = positive class, for all cohorts together.
    scores : mapping of str to array-like of shape (n_subjects,)
        ``{model name: scores}`` aligned with ``y_true``.
    cohorts : array-like of shape (n_subjects,)
        Cohort of each subject (e.g. a cohort frame's ``"cohort"`` column).
        The paper's cohorts are listed as train, validation, test; other
        labels in order of first appearance.
    threshold : float, "youden" or mapping of str to float, default=0.5
        Decision threshold for accuracy, sensitivity and specificity
        (positive when ``score >= threshold``): one number for all models,
        one per model, or ``"youden"`` to pick each model's Youden threshold
        on ``reference_cohort`` and apply it to every cohort.
    reference_cohort : optional
        Cohort where Youden thresholds are chosen; default ``"train"`` when
        present, else the first cohort.
    confidence : float, default=0.95
        Level of the DeLong AUC intervals.

    Returns
    -------
    DataFrame
        Index ``(model, cohort)``; columns ``n, n_positive, auc, auc_low,
        auc_high, "AUC (95% CI)", threshold, accuracy, sensitivity,
        specificity, ppv, npv, f1``, then ``<metric>_low, <metric>_high`` for each
        of those six (Wilson intervals, :func:`binary_summary`) and the confusion
        counts ``tp, fp, tn, fn``.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.metrics import evaluate_cohorts
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> cohorts = np.repeat(["train", "validation", "test"], [200, 120, 80])
    >>> table = evaluate_cohorts(y, {"m": y + rng.normal(0, 1, 400)}, cohorts,
    ...                          threshold="youden")
    >>> list(table.loc["m"].index)
    ['train', 'validation', 'test']
    """
    confidence = check_confidence(confidence)
    labels = check_labels(y_true)
    models = _check_models(scores, labels.size)
    groups = np.asarray(cohorts, dtype=object)
    if groups.ndim != 1 or groups.size != labels.size:
        raise ValueError(
            f"cohorts must have one value per subject ({labels.size}); got shape {groups.shape}"
        )
    missing = pd.isna(groups)
    if missing.any():
        raise ValueError(
            f"cohorts is missing at position(s) {', '.join(map(str, np.flatnonzero(missing)[:5]))}"
        )
    order = _cohort_order(groups)
    if isinstance(threshold, str):
        if threshold != "youden":
            raise ValueError(
                f"threshold must be a number, a mapping or 'youden'; got {threshold!r}"
            )
        ref = reference_cohort
        if ref is None:
            ref = "train" if "train" in order else order[0]
        if ref not in order:
            raise ValueError(f"reference_cohort {ref!r} is not among the cohorts {order}")
        in_ref = groups == ref
        thresholds = {
            name: youden_threshold(labels[in_ref], s[in_ref]).threshold
            for name, s in models.items()
        }
    elif isinstance(threshold, Mapping):
        unknown = set(map(str, threshold)) ^ set(models)
        if unknown:
            raise ValueError(
                f"threshold mapping must name exactly the models {list(models)}; "
                f"mismatched: {sorted(unknown)}"
            )
        thresholds = {str(k): _check_threshold(v) for k, v in threshold.items()}
    else:
        value = _check_threshold(threshold)
        thresholds = dict.fromkeys(models, value)
    label = f"AUC ({confidence:.0%} CI)"
    rows = []
    for name, score in models.items():
        for cohort in order:
            mask = groups == cohort
            y_c = labels[mask]
            try:
                auc, low, high = roc_auc_ci(y_c, score[mask], confidence=confidence)
            except ValueError as err:
                raise ValueError(f"cohort {cohort!r}: {err}") from None
            summary = binary_summary(y_c, score[mask], thresholds[name])
            rows.append(
                {
                    "model": name,
                    "cohort": cohort,
                    "n": int(mask.sum()),
                    "n_positive": int(y_c.sum()),
                    "auc": auc,
                    "auc_low": low,
                    "auc_high": high,
                    label: _format_ci(auc, low, high),
                    "threshold": thresholds[name],
                    "accuracy": summary.accuracy.estimate,
                    "sensitivity": summary.sensitivity.estimate,
                    "specificity": summary.specificity.estimate,
                    "ppv": summary.ppv.estimate,
                    "npv": summary.npv.estimate,
                    "f1": summary.f1.estimate,
                    **{
                        f"{metric}_{end}": getattr(getattr(summary, metric), end)
                        for metric in BinarySummary.METRICS
                        for end in ("low", "high")
                    },
                    "tp": summary.tp,
                    "fp": summary.fp,
                    "tn": summary.tn,
                    "fn": summary.fn,
                }
            )
    return pd.DataFrame(rows).set_index(["model", "cohort"])

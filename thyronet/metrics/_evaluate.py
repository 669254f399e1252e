"""Every statistic of the study from its predictions: performance, DeLong tests, calibration.

:func:`evaluate_predictions` takes one row per patient (cohort, label and one
probability column per model) and evaluates each model on each cohort, with
the threshold metrics at given thresholds (or Youden thresholds chosen on the
``train`` cohort).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from thyronet.metrics._calibration import calibration, calibration_intercept_slope
from thyronet.metrics._compare import compare_models, evaluate_cohorts
from thyronet.schema import COHORT_COLUMN, COHORTS, ID_COLUMN, LABEL_COLUMN

__all__ = ["evaluate_predictions"]


def evaluate_predictions(
    predictions: pd.DataFrame,
    models: list[str] | None = None,
    *,
    threshold: str | float = "youden",
    hl_groups: int = 10,
) -> dict[str, Any]:
    """Performance, DeLong tests and calibration of predicted probabilities, per cohort.

    Parameters
    ----------
    predictions : DataFrame
        One row per patient with ``cohort``, ``clnm`` and one probability column
        per model.
    models : list of str, optional
        Probability columns to evaluate (default: every float column other than
        ``cohort``, ``clnm`` and ``patient_id``, in column order; for the
        ``predictions.csv`` of a study, its five models).
    threshold : "youden", float or mapping of str to float, default="youden"
        ``"youden"``: each model's Youden threshold on the ``train`` cohort; one
        number for every model; or one per model (what :func:`run_study` passes,
        chosen by its ``threshold`` rule, :func:`choose_threshold`).
    hl_groups : int, default=10
        Hosmer-Lemeshow groups.

    Returns
    -------
    dict
        ``performance``, ``delong``, ``calibration`` (DataFrames, see
        :class:`thyronet.study.StudyResults`) and ``thresholds`` (dict).

    Raises
    ------
    ValueError
        A model has no column in ``predictions``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from thyronet.metrics import evaluate_predictions
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> frame = pd.DataFrame({"cohort": np.repeat(["train", "validation", "test"], 100),
    ...                       "clnm": y,
    ...                       "a": np.clip(0.3 + 0.4 * y + rng.normal(0, .2, 300), .01, .99),
    ...                       "b": rng.uniform(0.01, 0.99, 300)})
    >>> out = evaluate_predictions(frame, ["a", "b"])
    >>> sorted(out)
    ['calibration', 'delong', 'performance', 'thresholds']
    >>> bool(out["performance"].loc[("a", "test"), "auc"] > 0.8)
    True
    """
    if models is None:
        models = [
            str(c)
            for c in predictions.columns
            if c not in (COHORT_COLUMN, LABEL_COLUMN, ID_COLUMN)
            and pd.api.types.is_float_dtype(predictions[c])
        ]
    missing = [m for m in models if m not in predictions.columns]
    if missing:
        raise ValueError(f"predictions have no column(s) {missing}")
    labels = predictions[LABEL_COLUMN].to_numpy().astype(int)
    groups = predictions[COHORT_COLUMN].to_numpy()
    scores = {m: predictions[m].to_numpy(dtype=float) for m in models}
    performance = evaluate_cohorts(
        labels, scores, groups, threshold=threshold, reference_cohort="train"
    )
    thresholds = {m: float(performance.loc[m]["threshold"].iloc[0]) for m in models}
    rows, cal_rows = [], []
    cohorts = [c for c in COHORTS if c in set(groups)] or list(pd.unique(groups))
    for cohort in cohorts:
        mask = groups == cohort
        if len(models) > 1:
            cmp = compare_models(labels[mask], {m: s[mask] for m, s in scores.items()})
            pairs = cmp.pairs.copy()
            pairs.insert(0, "cohort", cohort)
            rows.append(pairs)
        for m in models:
            row = _calibration_row(labels[mask], scores[m][mask], cohort, hl_groups)
            cal_rows.append({"model": m, "cohort": cohort, **row})
    delong = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=_DELONG_COLUMNS)
    return {
        "performance": performance,
        "delong": delong,
        "calibration": pd.DataFrame(cal_rows).set_index(["model", "cohort"]),
        "thresholds": thresholds,
    }


_DELONG_COLUMNS = [
    "cohort",
    "model_a",
    "model_b",
    "difference",
    "ci_low",
    "ci_high",
    "z",
    "p_value",
]


def _calibration_row(y: np.ndarray, scores: np.ndarray, cohort: str, hl_groups: int) -> dict:
    """Hosmer-Lemeshow test, Brier score and calibration line of one model on one cohort.

    When the test cannot be computed (e.g. too few distinct probabilities for the
    groups) its values are NaN and ``note`` says why.
    """
    prob = np.clip(scores, 1e-6, 1 - 1e-6)
    sample = "development" if cohort == "train" else "external"
    row = {
        "hl_statistic": np.nan,
        "hl_df": np.nan,
        "hl_p_value": np.nan,
        "brier": float(np.mean((prob - y) ** 2)),
        "intercept": np.nan,
        "slope": np.nan,
        "note": "",
    }
    try:
        cal = calibration(y, prob, n_groups=hl_groups, sample=sample)
    except ValueError as err:  # e.g. too few distinct probabilities for the HL groups
        row["note"] = str(err)
        try:
            line = calibration_intercept_slope(y, prob)
            row.update(intercept=line.intercept, slope=line.slope)
        except ValueError:  # no calibration line either: intercept and slope stay NaN
            pass
        return row
    hl = cal.hosmer_lemeshow
    row.update(
        hl_statistic=hl.statistic,
        hl_df=hl.df,
        hl_p_value=hl.p_value,
        brier=cal.brier,
        intercept=cal.intercept,
        slope=cal.slope,
    )
    return row

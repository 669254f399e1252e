"""The study's tables: what the fitted models chose, and the report's tables of the results.

:func:`_classifier_table` and :func:`_feature_details` read the fitted combined and
clinical models (candidate classifiers, features reaching the classifier);
:func:`_report_tables` gives the report's tables as :class:`_Table` (header and
formatted cells) for the template to draw.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline

from thyronet._walk import walk_fitted
from thyronet.classifier_selection import ClassifierSelector
from thyronet.metrics import BinarySummary, format_baseline_table, roc_auc_ci
from thyronet.selection import LassoSelector, PValueSelector
from thyronet.study._labels import COHORT_LABELS, MODEL_LABELS, MODEL_NAMES, classifier_label
from thyronet.study._results import StudyResults

_FEATURE_COLUMNS = ["feature", "source", "p_value", "lasso_coef"]
_P_COLUMNS = ("P", "HL P", "p_value", "Univariate P")


# --------------------------------------------------------------------------- from the models
def _classifier_table(models: dict[str, Any]) -> pd.DataFrame:
    """Candidate classifiers of Models 4 and 5 with their selection scores."""
    rows = []
    for name in ("combined", "clinical"):
        selector = next(
            (
                s
                for _, s in walk_fitted(models.get(name))
                if isinstance(s, ClassifierSelector) and hasattr(s, "scores_")
            ),
            None,
        )
        if selector is None:
            continue
        for clf, row in selector.scores_.iterrows():
            rows.append(
                {
                    "model": name,
                    "classifier": str(clf),
                    "score": row["mean_score"],
                    "rank": int(row["rank"]),
                    "chosen": clf == selector.best_name_,
                    "selected_by": selector.selected_by_,
                }
            )
    return pd.DataFrame(
        rows, columns=["model", "classifier", "score", "rank", "chosen", "selected_by"]
    )


def _names_out(transformer) -> list[str] | None:
    """Output feature names, or ``None`` when a step does not provide them.

    scikit-learn raises ``AttributeError`` for a step without
    ``get_feature_names_out`` (a user's custom transformer, say).
    """
    try:
        return [str(n) for n in transformer.get_feature_names_out()]
    except AttributeError:
        return None


def _feature_sources(model: Pipeline, counts: dict[str, Any]) -> dict[str, str]:
    """Source (``deep``, ``clinical``, ...) of each feature after the first ColumnTransformer."""
    first = model.steps[0][1]
    source: dict[str, str] = {}
    if isinstance(first, ColumnTransformer) and hasattr(first, "output_indices_"):
        names = _names_out(first)
        if names is None:
            return source
        for part, span in first.output_indices_.items():
            for feature in names[span]:
                source[feature] = "deep" if part == "dl" else str(part)
        counts["clinical_features"] = sum(v == "clinical" for v in source.values())
    return source


def _feature_details(model) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Features reaching a combined model's classifier and the counts at each stage.

    An empty table when the model is no pipeline or its steps give no feature names.
    """
    counts: dict[str, Any] = {}
    empty = pd.DataFrame(columns=_FEATURE_COLUMNS)
    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return empty, counts
    fitted = [s for _, s in walk_fitted(model)]
    extractor = next((s for s in fitted if hasattr(s, "feature_dim_")), None)
    if extractor is not None:
        counts["deep_features"] = int(extractor.feature_dim_)
    pca = next((s for s in fitted if isinstance(s, PCA)), None)
    if pca is not None and hasattr(pca, "n_components_"):
        counts["pca_components"] = int(pca.n_components_)
    source = _feature_sources(model, counts)
    step_index = {type(step): i for i, (_, step) in enumerate(model.steps)}
    p_idx, l_idx = step_index.get(PValueSelector), step_index.get(LassoSelector)
    pvalues: dict[str, float] = {}
    if p_idx is not None:
        selector = model.steps[p_idx][1]
        before = _names_out(model[:p_idx])
        if before is None:
            return empty, counts
        pvalues = dict(zip(before, selector.pvalues_, strict=True))
        counts["after_pvalue"] = int(selector.support_.sum())
    coefs: dict[str, float] = {}
    if l_idx is None:
        names = _names_out(model[:-1])
    else:
        lasso = model.steps[l_idx][1]
        before = _names_out(model[:l_idx])
        if before is not None:
            coef = np.asarray(lasso.coef_)
            coef = coef if coef.ndim == 1 else np.abs(coef).max(axis=0)
            coefs = dict(zip(before, coef, strict=True))
            names = [n for n, keep in zip(before, lasso.support_, strict=True) if keep]
            counts["after_lasso"] = len(names)
        else:
            names = None
    if names is None:
        return empty, counts
    rows = [
        {
            "feature": n,
            "source": source.get(n, "clinical" if not source else "other"),
            "p_value": pvalues.get(n, np.nan),
            "lasso_coef": coefs.get(n, np.nan),
        }
        for n in names
    ]
    table = pd.DataFrame(rows, columns=_FEATURE_COLUMNS)
    if len(table):
        table = table.reindex(table["lasso_coef"].abs().sort_values(ascending=False).index)
    return table.reset_index(drop=True), counts


# --------------------------------------------------------------------------- for the report
class _Table(NamedTuple):
    """A table as the report template draws it: column names and formatted cells."""

    columns: list[str]
    rows: list[list[str]]


def _cell(value, *, digits: int, p_value: bool) -> str:
    if value is None or (isinstance(value, float | np.floating) and not np.isfinite(value)):
        return ""
    if isinstance(value, float | np.floating):
        return "< 0.001" if p_value and value < 0.001 else f"{value:.{digits}f}"
    return str(value)


def _table(frame: pd.DataFrame, *, digits: int = 3) -> _Table:
    """Floats with ``digits`` decimals (P values below 0.001 as ``< 0.001``), NaN blank."""
    rows = [
        [
            _cell(v, digits=digits, p_value=column in _P_COLUMNS)
            for column, v in zip(frame.columns, row, strict=True)
        ]
        for row in frame.itertuples(index=False, name=None)
    ]
    return _Table([str(c) for c in frame.columns], rows)


def _classifier_scores(results: StudyResults, model: str) -> _Table | None:
    """The candidate classifiers of ``model`` (``None`` when it chose none)."""
    table = results.classifier_scores
    table = table[table["model"] == model]
    if table.empty:
        return None
    shown = table[["classifier", "score", "rank", "chosen"]].rename(
        columns={
            "classifier": "Classifier",
            "score": "AUC (selection)",
            "rank": "Rank",
            "chosen": "Chosen",
        }
    )
    shown["Chosen"] = shown["Chosen"].map({True: "yes", False: ""})
    shown["Classifier"] = shown["Classifier"].map(classifier_label)
    return _table(shown)


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """``model``/``cohort`` columns (and DeLong's ``model_a``/``model_b``) as display names."""
    frame = frame.copy()
    for column in ("model", "model_a", "model_b"):
        if column in frame.columns:
            frame[column] = frame[column].map(lambda m: MODEL_LABELS.get(m, m))
    if "cohort" in frame.columns:
        frame["cohort"] = frame["cohort"].map(lambda c: COHORT_LABELS.get(c, c))
    return frame


def _cohort_sizes(results: StudyResults) -> pd.DataFrame:
    pred = results.predictions
    sizes = pred.groupby("cohort")["clnm"].agg(["size", "sum", "mean"]).reindex(results.cohorts)
    return pd.DataFrame(
        {
            "Cohort": [COHORT_LABELS[c] for c in sizes.index],
            "Patients": sizes["size"].astype(int).to_numpy(),
            "CLNM": sizes["sum"].astype(int).to_numpy(),
            "CLNM rate": [f"{v:.1%}" for v in sizes["mean"]],
        }
    )


def _auc_table(results: StudyResults) -> pd.DataFrame:
    perf = results.performance
    auc = (
        perf["AUC (95% CI)"]
        .unstack("cohort")
        .reindex(
            index=[m for m in MODEL_NAMES if m in perf.index.get_level_values(0)],
            columns=results.cohorts,
        )
    )
    auc.index = [MODEL_LABELS[m] for m in auc.index]
    auc.columns = [COHORT_LABELS[c] for c in auc.columns]
    return auc.reset_index().rename(columns={"index": "Model"})


_DELONG_NAMES = {
    "cohort": "Cohort",
    "kind": "Kind",
    "model_a": "Model A",
    "model_b": "Model B",
    "difference": "AUC A - B",
    "ci_low": "CI low",
    "ci_high": "CI high",
    "p_value": "P",
}
_CALIBRATION_NAMES = {
    "model": "Model",
    "cohort": "Cohort",
    "hl_statistic": "HL chi2",
    "hl_df": "df",
    "hl_p_value": "HL P",
    "brier": "Brier",
    "intercept": "Calibration intercept",
    "slope": "Calibration slope",
    "note": "Note",
}
_PERFORMANCE_NAMES = {
    "model": "Model",
    "cohort": "Cohort",
    "n": "n",
    "n_positive": "CLNM",
    "AUC (95% CI)": "AUC (95% CI)",
    "threshold": "Threshold",
    "accuracy": "Accuracy (95% CI)",
    "sensitivity": "Sensitivity (95% CI)",
    "specificity": "Specificity (95% CI)",
    "ppv": "PPV (95% CI)",
    "npv": "NPV (95% CI)",
    "f1": "F1 (95% CI)",
    "tp": "TP",
    "fp": "FP",
    "tn": "TN",
    "fn": "FN",
}


def _with_intervals(performance: pd.DataFrame) -> pd.DataFrame:
    """Each threshold metric as one "estimate (low-high)" cell (Wilson 95% CI)."""
    frame = performance.copy()
    for metric in BinarySummary.METRICS:
        frame[metric] = [
            "" if not np.isfinite(v) else f"{v:.3f} ({lo:.3f}-{hi:.3f})"
            for v, lo, hi in zip(
                frame[metric], frame[f"{metric}_low"], frame[f"{metric}_high"], strict=True
            )
        ]
    return frame


_FEATURE_NAMES = {
    "feature": "Feature",
    "source": "Source",
    "p_value": "Univariate P",
    "lasso_coef": "LASSO coefficient",
}


def _per_center_table(
    predictions: pd.DataFrame, centers: pd.Series, cohorts: list[str]
) -> pd.DataFrame:
    """AUC (95% CI, DeLong) of each model per cohort and centre (TRIPOD+AI 23b).

    Empty when ``centers`` holds fewer than two distinct values. A centre with one
    class in a cohort gets no AUC and a note.
    """
    columns = ["model", "cohort", "center", "n", "n_positive", "auc", "auc_low", "auc_high"]
    columns += ["AUC (95% CI)", "note"]
    centers = centers.reindex(predictions.index)
    if centers.dropna().nunique() < 2:
        return pd.DataFrame(columns=columns)
    models = [m for m in MODEL_NAMES if m in predictions.columns]
    rows = []
    for name in models:
        for cohort in cohorts:
            for center in sorted(centers.dropna().unique()):
                mask = ((predictions["cohort"] == cohort) & (centers == center)).to_numpy()
                if not mask.any():
                    continue
                y = predictions.loc[mask, "clnm"].to_numpy().astype(int)
                row = {"model": name, "cohort": cohort, "center": center, "n": int(mask.sum())}
                row.update(n_positive=int(y.sum()), note="")
                if 0 < y.sum() < len(y):
                    auc, low, high = roc_auc_ci(y, predictions.loc[mask, name].to_numpy())
                    row.update(auc=auc, auc_low=low, auc_high=high)
                    row["AUC (95% CI)"] = f"{auc:.3f} ({low:.3f}-{high:.3f})"
                else:
                    row.update(auc=np.nan, auc_low=np.nan, auc_high=np.nan)
                    row.update({"AUC (95% CI)": "", "note": "one class: no AUC"})
                rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _report_tables(results: StudyResults) -> dict[str, _Table | None]:
    """Every table of the report, keyed by its place in the template."""
    delong = _labelled(results.delong).drop(columns=["z"], errors="ignore")
    performance = _labelled(_with_intervals(results.performance.reset_index()))[
        list(_PERFORMANCE_NAMES)
    ]
    config = results.config.to_dict()
    selected = results.selected_features.rename(columns=_FEATURE_NAMES)
    return {
        "cohorts": _table(_cohort_sizes(results)),
        "table1": _table(
            format_baseline_table(results.table1, group_labels=COHORT_LABELS, indent="\u00a0" * 4)
        ),
        "auc": _table(_auc_table(results)),
        "clinical_classifiers": _classifier_scores(results, "clinical"),
        "combined_classifiers": _classifier_scores(results, "combined"),
        "selected": _table(selected, digits=4) if len(selected) else None,
        "delong": _table(delong.rename(columns=_DELONG_NAMES)),
        "calibration": _table(
            _labelled(results.calibration.reset_index()).rename(columns=_CALIBRATION_NAMES)
        ),
        "performance": _table(performance.rename(columns=_PERFORMANCE_NAMES)),
        "per_center": (
            _table(
                _labelled(results.per_center)
                .drop(columns=["auc", "auc_low", "auc_high"])
                .rename(columns={"model": "Model", "cohort": "Cohort", "center": "Centre"})
            )
            if len(results.per_center)
            else None
        ),
        "config": _table(
            pd.DataFrame({"key": list(config), "value": [str(v) for v in config.values()]})
        ),
    }

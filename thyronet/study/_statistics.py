"""The statistics a journal asks for beyond the AUCs: calibration, optimism, reclassification.

:func:`add_statistics` fills ``results.statistics`` with

- ``calibration``: per model and cohort, :func:`thyronet.metrics.calibration_summary`
  (intercept and slope with Wald CIs, calibration-in-the-large, ICI = Eavg, E90,
  Brier, Spiegelhalter's z);
- ``optimism``: Harrell's bootstrap optimism-corrected training AUC, slope,
  intercept and Brier of the clinical and combined models
  (:func:`thyronet.metrics.bootstrap_validate`);
- ``reclassification``: continuous NRI and IDI of the combined model over the
  clinical one in each cohort (:func:`thyronet.metrics.reclassification`);
- ``chance``: the (model, cohort) pairs whose AUC CI contains 0.5;
- ``metrics``: the blocks ``metrics.json`` adds per (model, cohort).

It also holds the report's wording of these numbers (:func:`calibration_text`,
:func:`optimism_text`, :func:`reclassification_text`, :func:`chance_text`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from thyronet._walk import walk_fitted
from thyronet.metrics import bootstrap_validate, calibration_summary, reclassification
from thyronet.schema import COHORT_COLUMN, LABEL_COLUMN
from thyronet.selection import ClassifierSelector
from thyronet.study._labels import CALIBRATION_MODELS, COHORT_LABELS, MODEL_LABELS, MODEL_NAMES
from thyronet.study._results import StudyResults
from thyronet.study._tables import _Table, _table

__all__ = ["add_statistics", "report_statistics", "write_statistics_tables"]

_EPS = 1e-6
OPTIMISM_MODELS = ("clinical", "combined")
CALIBRATION_COLUMNS = [
    "n",
    "n_events",
    "intercept",
    "intercept_low",
    "intercept_high",
    "slope",
    "slope_low",
    "slope_high",
    "citl",
    "citl_low",
    "citl_high",
    "ici",
    "e90",
    "brier",
    "spiegelhalter_z",
    "spiegelhalter_p",
]


# --------------------------------------------------------------------------- computing
def _calibration(results: StudyResults) -> pd.DataFrame:
    pred = results.predictions
    rows, index = [], []
    for model in [m for m in MODEL_NAMES if m in pred.columns]:
        for cohort in results.cohorts:
            part = pred[pred[COHORT_COLUMN] == cohort]
            prob = np.clip(part[model].to_numpy(dtype=float), _EPS, 1 - _EPS)
            try:
                s = calibration_summary(part[LABEL_COLUMN].to_numpy(), prob)
            except ValueError:  # one class or fewer than 5 patients: nothing to summarise
                continue
            index.append((model, cohort))
            rows.append(
                [
                    s.n,
                    s.n_events,
                    s.intercept,
                    *s.intercept_ci,
                    s.slope,
                    *s.slope_ci,
                    s.calibration_in_the_large,
                    *s.calibration_in_the_large_ci,
                    s.eavg,
                    s.e90,
                    s.brier,
                    s.spiegelhalter_z,
                    s.spiegelhalter_p,
                ]
            )
    return pd.DataFrame(
        rows,
        index=pd.MultiIndex.from_tuples(index, names=["model", "cohort"]),
        columns=CALIBRATION_COLUMNS,
    )


def _fixed_classifier(steps: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``steps`` with a fitted :class:`ClassifierSelector` replaced by an unfitted clone
    of the classifier it chose."""
    name, last = steps[-1]
    if isinstance(last, ClassifierSelector) and hasattr(last, "best_estimator_"):
        return [*steps[:-1], (name, clone(last.best_estimator_))]
    return steps


def _holds_cnn(step) -> bool:
    return any(hasattr(s, "feature_dim_") or hasattr(s, "net_") for _, s in walk_fitted(step))


def _bootstrap_problem(model, train: pd.DataFrame, inputs=None) -> tuple[Any, Any, str]:
    """The estimator to refit in each bootstrap sample, its input, and what is held fixed.

    The chosen classifier is refitted, not chosen again. A first step holding a CNN
    (the combined model's deep-feature step: DL_F network and PCA) is held fixed:
    its features of the training patients are those the model's ``fit`` used
    (``inputs.first_step``: out-of-fold for a cross-fitted model) or, without them,
    computed once by ``transform``; the steps after it are refitted, so no network
    is retrained.
    """
    if not isinstance(model, Pipeline):
        return clone(model), train, "the whole model was refitted"
    steps = _fixed_classifier(list(model.steps))
    if len(steps) > 1 and _holds_cnn(steps[0][1]):
        if inputs is not None:
            features = inputs.first_step
            which = (
                "its out-of-fold (cross-fitted) features of the training patients, as fit used them"
            )
        else:
            features = model[:1].transform(train)
            which = "the training patients' features from the CNN fitted on all of them"
        tail = Pipeline([(n, clone(s)) for n, s in steps[1:]])
        return (
            tail,
            features,
            f"the deep-feature step (the fitted DL_F network and its PCA; {which}) was held "
            "fixed and the steps after it (scaling, P-value filter, LASSO, the chosen "
            "classifier) were refitted",
        )
    return (
        Pipeline([(n, clone(s)) for n, s in steps]),
        train,
        "every step was refitted with the chosen classifier",
    )


def _optimism(
    results: StudyResults, frame: pd.DataFrame, n_bootstrap: int
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    train = frame[frame[COHORT_COLUMN] == "train"]
    y = train[LABEL_COLUMN].to_numpy().astype(int)
    tables, methods = {}, {}
    for name in OPTIMISM_MODELS:
        model = results.models.get(name)
        if model is None or n_bootstrap <= 0:
            continue
        features = train[results.feature_columns] if results.feature_columns else train
        inputs = results.training_inputs.get(name)  # kept for cross-fitted models only
        estimator, X, method = _bootstrap_problem(model, features, inputs)  # what models see
        tables[name] = bootstrap_validate(
            estimator, X, y, n_bootstrap=n_bootstrap, random_state=results.config.random_state
        )
        methods[name] = method
    return tables, methods


def _reclassification(results: StudyResults) -> pd.DataFrame:
    pred = results.predictions
    rows = []
    if not {"combined", "clinical"} <= set(pred.columns):
        return pd.DataFrame()
    for cohort in results.cohorts:
        part = pred[pred[COHORT_COLUMN] == cohort]
        try:
            r = reclassification(part[LABEL_COLUMN], part["clinical"], part["combined"])
        except ValueError:  # one class in this cohort
            continue
        rows.append(
            {
                "cohort": cohort,
                "new_model": "combined",
                "reference_model": "clinical",
                "n_events": r.n_events,
                "n_nonevents": r.n_nonevents,
                "nri": r.nri,
                "nri_low": r.nri_ci[0],
                "nri_high": r.nri_ci[1],
                "nri_p": r.nri_p,
                "nri_events": r.nri_events,
                "nri_nonevents": r.nri_nonevents,
                "idi": r.idi,
                "idi_low": r.idi_ci[0],
                "idi_high": r.idi_ci[1],
                "idi_p": r.idi_p,
            }
        )
    return pd.DataFrame(rows)


def chance_pairs(results: StudyResults) -> list[tuple[str, str]]:
    """(model, cohort) pairs whose AUC confidence interval contains 0.5."""
    perf = results.performance
    return [
        (m, c)
        for (m, c), row in perf.iterrows()
        if np.isfinite(row["auc_low"]) and row["auc_low"] <= 0.5 <= row["auc_high"]
    ]


def _f(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _metrics_blocks(stats: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    blocks: dict[tuple[str, str], dict[str, Any]] = {}
    for (model, cohort), r in stats["calibration"].iterrows():
        blocks.setdefault((model, cohort), {})["calibration"] = {
            "intercept": _f(r["intercept"]),
            "intercept_ci": [_f(r["intercept_low"]), _f(r["intercept_high"])],
            "slope": _f(r["slope"]),
            "slope_ci": [_f(r["slope_low"]), _f(r["slope_high"])],
            "calibration_in_the_large": _f(r["citl"]),
            "calibration_in_the_large_ci": [_f(r["citl_low"]), _f(r["citl_high"])],
            "ici": _f(r["ici"]),
            "e90": _f(r["e90"]),
            "brier": _f(r["brier"]),
            "spiegelhalter_z": _f(r["spiegelhalter_z"]),
            "spiegelhalter_p": _f(r["spiegelhalter_p"]),
        }
    for model, table in stats["optimism"].items():
        block = {index: {k: _f(v) for k, v in table.loc[index].items()} for index in table.index}
        block["n_bootstrap"] = int(table.attrs.get("n_bootstrap", 0))
        block["method"] = stats["optimism_method"][model]
        blocks.setdefault((model, "train"), {})["optimism_corrected"] = block
    chance = set(stats["chance"])
    for model, cohort in chance:
        blocks.setdefault((model, cohort), {})["auc_ci_contains_0_5"] = True
    return blocks


def add_statistics(results: StudyResults, frame: pd.DataFrame, *, n_bootstrap: int) -> None:
    """Compute the statistics of this module into ``results.statistics``.

    Parameters
    ----------
    results : StudyResults
        With fitted models and predictions.
    frame : DataFrame
        The cohort frame the models take as ``X``.
    n_bootstrap : int
        Bootstrap refits of the optimism correction (0: none).
    """
    stats: dict[str, Any] = {"calibration": _calibration(results)}
    stats["optimism"], stats["optimism_method"] = _optimism(results, frame, n_bootstrap)
    stats["reclassification"] = _reclassification(results)
    stats["chance"] = chance_pairs(results)
    stats["metrics"] = _metrics_blocks(stats)
    results.statistics.update(stats)


# --------------------------------------------------------------------------- tables
def calibration_csv(results: StudyResults) -> pd.DataFrame:
    """``tables/calibration.csv``."""
    return results.statistics["calibration"].reset_index()


def optimism_csv(results: StudyResults) -> pd.DataFrame:
    """``tables/optimism.csv``: model, index, apparent, optimism, corrected, n_bootstrap."""
    frames = []
    for model, table in results.statistics.get("optimism", {}).items():
        t = table.rename_axis("index").reset_index()
        t.insert(0, "model", model)
        t["n_bootstrap"] = table.attrs.get("n_bootstrap", 0)
        frames.append(t)
    if not frames:
        return pd.DataFrame(
            columns=["model", "index", "apparent", "optimism", "corrected", "n_bootstrap"]
        )
    return pd.concat(frames, ignore_index=True)


def _ci(value, low, high, digits: int = 2) -> str:
    if not np.isfinite(value):
        return "NA"

    def fmt(x: float) -> str:  # no "-0.00": a value that rounds to zero prints unsigned
        return f"{round(float(x), digits) + 0.0:.{digits}f}"

    return f"{fmt(value)} ({fmt(low)} to {fmt(high)})"


def _pv(p: float) -> str:
    if not np.isfinite(p):
        return "NA"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def calibration_display(results: StudyResults) -> pd.DataFrame:
    """The report's calibration table."""
    cal = results.statistics["calibration"]
    rows = []
    for (model, cohort), r in cal.iterrows():
        rows.append(
            {
                "Model": MODEL_LABELS.get(model, model),
                "Cohort": COHORT_LABELS.get(cohort, cohort),
                "Events / n": f"{int(r['n_events'])} / {int(r['n'])}",
                "Slope (95% CI)": _ci(r["slope"], r["slope_low"], r["slope_high"]),
                "Intercept (95% CI)": _ci(r["intercept"], r["intercept_low"], r["intercept_high"]),
                "CITL (95% CI)": _ci(r["citl"], r["citl_low"], r["citl_high"]),
                "ICI": f"{r['ici']:.3f}",
                "E90": f"{r['e90']:.3f}",
                "Brier": f"{r['brier']:.3f}",
                "Spiegelhalter P": _pv(r["spiegelhalter_p"]),
            }
        )
    return pd.DataFrame(rows)


def optimism_display(results: StudyResults) -> pd.DataFrame:
    rows = []
    for model, t in results.statistics.get("optimism", {}).items():
        for index, label in (("auc", "AUC"), ("slope", "Calibration slope")):
            rows.append(
                {
                    "Model": MODEL_LABELS.get(model, model),
                    "Index": label,
                    "Apparent": f"{t.loc[index, 'apparent']:.3f}",
                    "Optimism": f"{t.loc[index, 'optimism']:.3f}",
                    "Corrected": f"{t.loc[index, 'corrected']:.3f}",
                }
            )
    return pd.DataFrame(rows)


def reclassification_display(results: StudyResults) -> pd.DataFrame:
    rec = results.statistics.get("reclassification", pd.DataFrame())
    rows = []
    for r in rec.itertuples():
        rows.append(
            {
                "Cohort": COHORT_LABELS.get(r.cohort, r.cohort),
                "Continuous NRI (95% CI)": _ci(r.nri, r.nri_low, r.nri_high),
                "NRI P": _pv(r.nri_p),
                "NRI events": f"{r.nri_events:.2f}",
                "NRI non-events": f"{r.nri_nonevents:.2f}",
                "IDI (95% CI)": _ci(r.idi, r.idi_low, r.idi_high, 3),
                "IDI P": _pv(r.idi_p),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- wording
def _verdict(r) -> str:
    if r["slope_high"] < 1:
        return "predictions too extreme (slope below 1: overfitting)"
    if r["slope_low"] > 1:
        return "predictions too moderate (slope above 1)"
    if r["citl_low"] > 0:
        return "risks under-estimated on average (calibration-in-the-large above 0)"
    if r["citl_high"] < 0:
        return "risks over-estimated on average (calibration-in-the-large below 0)"
    return "no clear miscalibration, within wide intervals"


def calibration_text(results: StudyResults) -> str:
    """Calibration read from the slope and intercept, with the Hosmer-Lemeshow P as an aside."""
    cal = results.statistics.get("calibration")
    if cal is None or cal.empty:
        return "Calibration could not be summarised."
    sentences = []
    for cohort in results.cohorts:
        items = []
        events = None
        for m in CALIBRATION_MODELS:
            if (m, cohort) not in cal.index:
                continue
            r = cal.loc[(m, cohort)]
            events = int(r["n_events"])
            items.append(
                f"{MODEL_LABELS[m]} slope "
                f"{_ci(r['slope'], r['slope_low'], r['slope_high'])}, calibration-in-the-large "
                f"{_ci(r['citl'], r['citl_low'], r['citl_high'])}, ICI {r['ici']:.3f}: "
                f"{_verdict(r)}"
            )
        if items:
            sentences.append(
                f"{COHORT_LABELS[cohort]} ({events} events): " + "; ".join(items) + "."
            )
    sentences.append(
        "An ideal model has slope 1 and calibration-in-the-large 0. The Hosmer-Lemeshow "
        "test (table below) has little power with this few events, so a non-significant "
        "P value is not evidence of good calibration. On the training set the slope is "
        "optimistic by construction; see the optimism-corrected estimates."
    )
    return " ".join(sentences)


def optimism_text(results: StudyResults) -> str:
    opt = results.statistics.get("optimism", {})
    if not opt:
        return "No bootstrap optimism correction was run (optimism_bootstrap = 0)."
    parts = []
    for model, t in opt.items():
        parts.append(
            f"{MODEL_LABELS[model]}: training AUC {t.loc['auc', 'apparent']:.3f}, "
            f"optimism-corrected {t.loc['auc', 'corrected']:.3f}; calibration slope "
            f"corrected to {t.loc['slope', 'corrected']:.2f} "
            f"({results.statistics['optimism_method'][model]})"
        )
    n = next(iter(opt.values())).attrs.get("n_bootstrap", 0)
    return (
        f"Harrell's bootstrap optimism correction on the training set ({n} bootstrap "
        "samples; each model refitted on every sample and tested on the original data; "
        "the classifier chosen on the validation set was kept, not chosen again). "
        + "; ".join(parts)
        + "."
        + (" With so few bootstrap samples these are rough estimates." if n < 200 else "")
    )


def reclassification_text(results: StudyResults) -> str:
    rec = results.statistics.get("reclassification", pd.DataFrame())
    if rec.empty:
        return "No reclassification analysis (the combined or clinical model is missing)."
    parts = [
        f"{COHORT_LABELS[r.cohort].lower()} NRI {_ci(r.nri, r.nri_low, r.nri_high)} "
        f"(P {_pv(r.nri_p)}), IDI {_ci(r.idi, r.idi_low, r.idi_high, 3)} (P {_pv(r.idi_p)})"
        for r in rec.itertuples()
    ]
    return (
        f"Against {MODEL_LABELS['clinical']}, {MODEL_LABELS['combined']} gave a continuous "
        "net reclassification improvement (NRI) and integrated discrimination improvement "
        "(IDI) of: " + "; ".join(parts) + ". Positive values favour the combined model; an "
        "interval containing 0 means no demonstrated improvement."
    )


def chance_text(results: StudyResults) -> str:
    """One sentence naming every model whose AUC CI contains 0.5, or ``""``."""
    pairs = results.statistics.get("chance", [])
    if not pairs:
        return ""
    by_model: dict[str, list[str]] = {}
    for m, c in pairs:
        by_model.setdefault(m, []).append(COHORT_LABELS.get(c, c).lower())
    items = "; ".join(
        f"{MODEL_LABELS.get(m, m)} in the {', '.join(cs)}" for m, cs in by_model.items()
    )
    return (
        "Not distinguishable from chance (AUC 95% CI includes 0.5, marked † in the tables): "
        f"{items}. Explanations of these models (Grad-CAM, SHAP) show what a model with no "
        "demonstrated discrimination attends to, not what predicts CLNM."
    )


def write_statistics_tables(results: StudyResults, tables) -> None:
    """``calibration.csv``, ``optimism.csv`` and ``reclassification.csv`` under ``tables``."""
    calibration_csv(results).to_csv(tables / "calibration.csv", index=False)
    optimism_csv(results).to_csv(tables / "optimism.csv", index=False)
    rec = results.statistics.get("reclassification", pd.DataFrame())
    if rec.empty:
        rec = pd.DataFrame(columns=["cohort", "new_model", "reference_model", "nri", "idi"])
    rec.to_csv(tables / "reclassification.csv", index=False)
    if "tripod" in results.statistics:
        results.statistics["tripod"].to_csv(tables / "tripod_ai.csv", index=False)
    if "occlusion" in results.statistics:
        results.statistics["occlusion"].to_csv(tables / "occlusion.csv", index=False)


# --------------------------------------------------------------------------- report
def _mark_chance(table: _Table, results: StudyResults) -> _Table:
    """Append † to the AUC cells of (model, cohort) pairs whose CI contains 0.5."""
    pairs = {
        (MODEL_LABELS.get(m, m), COHORT_LABELS.get(c, c)) for m, c in results.statistics["chance"]
    }
    if not pairs:
        return table
    cols = table.columns
    rows = [list(r) for r in table.rows]
    if "AUC (95% CI)" in cols and "Model" in cols and "Cohort" in cols:  # long format
        i, m, c = cols.index("AUC (95% CI)"), cols.index("Model"), cols.index("Cohort")
        for r in rows:
            if (r[m], r[c]) in pairs:
                r[i] += " †"
    elif "Model" in cols:  # wide: one column per cohort
        m = cols.index("Model")
        for r in rows:
            for j, cohort in enumerate(cols):
                if (r[m], cohort) in pairs:
                    r[j] += " †"
    return _Table(cols, rows)


def _without_empty_columns(table: _Table | None) -> _Table | None:
    if table is None or not table.rows:
        return table
    keep = [j for j in range(len(table.columns)) if any(r[j] != "" for r in table.rows)]
    return _Table([table.columns[j] for j in keep], [[r[j] for j in keep] for r in table.rows])


def report_statistics(results: StudyResults, tables: dict[str, _Table | None]) -> dict[str, Any]:
    """The report's statistics texts and tables; marks chance-level AUCs in ``tables``
    and drops their empty columns (in place)."""
    for key in ("auc", "performance"):
        if tables.get(key) is not None:
            tables[key] = _mark_chance(tables[key], results)
    for key in list(tables):
        tables[key] = _without_empty_columns(tables[key])
    opt = optimism_display(results)
    rec = reclassification_display(results)
    return {
        "chance": chance_text(results),
        "calibration": calibration_text(results),
        "optimism": optimism_text(results),
        "reclassification": reclassification_text(results),
        "calibration_table": _table(calibration_display(results)),
        "optimism_table": _table(opt) if len(opt) else None,
        "reclassification_table": _table(rec) if len(rec) else None,
        "tripod_table": _tripod_display(results),
    }


def _tripod_display(results: StudyResults) -> _Table | None:
    tripod = results.statistics.get("tripod")
    if tripod is None:
        return None
    shown = tripod[["item", "topic", "value", "where"]].rename(
        columns={"item": "Item", "topic": "Topic", "value": "This study", "where": "In the report"}
    )
    return _table(shown)

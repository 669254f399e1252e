"""What a study produced: :class:`StudyResults` and its :class:`FigureRecord` figures.

Plain containers with a few read-only views (``metrics.json``, AUCs, DeLong P
values); the study fills them, the tables, figures and report read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from thyronet.metrics import BinarySummary
from thyronet.schema import COHORT_COLUMN, COHORTS
from thyronet.study._config import StudyConfig

__all__ = ["FigureRecord", "StudyResults"]


@dataclass
class FigureRecord:
    """One figure of the study: its title, caption and rendered PNG/SVG.

    Attributes
    ----------
    name : str
        File stem (``roc_test``).
    title, caption : str
        Shown in the report.
    png, svg : bytes
        The rendered images.
    section : str
        Report section the figure belongs to.
    paths : list of Path
        Files written (empty without ``out_dir``).
    """

    name: str
    title: str
    caption: str
    png: bytes
    svg: bytes
    section: str = "performance"
    paths: list[Path] = field(default_factory=list)


@dataclass
class StudyResults:
    """Everything :func:`run_study` produced.

    Attributes
    ----------
    config : StudyConfig
    models : dict of str to estimator
        Fitted models keyed like :data:`MODEL_NAMES`.
    model_status : dict of str to str
        ``"fitted"`` (in this run) or ``"loaded"`` (resumed from ``out_dir``).
    predictions : DataFrame
        One row per patient: ``patient_id``, ``cohort``, ``clnm`` and each
        model's predicted probability.
    thresholds : dict of str to float
        Decision threshold of each model.
    per_center : DataFrame
        AUC (95% CI) of each model per cohort and centre (``model, cohort, center, n,
        n_positive, auc, auc_low, auc_high, "AUC (95% CI)", note``); empty unless the
        cohort's ``center`` column has more than one value.
    feature_columns : list of str
        The cohort columns the models saw as ``X`` (views, ROIs, clinical indicators,
        ``extra_columns``); never the label, ``cohort``, ``patient_id``, ``oracle_risk``
        or ``truth_*``.
    threshold_sources : dict of str to str
        How each threshold was chosen, in words (e.g. "Youden's J on the validation
        (tuning) cohort predictions").
    performance : DataFrame
        Index ``(model, cohort)``: ``n, n_positive, auc, auc_low, auc_high,
        "AUC (95% CI)", threshold, accuracy, sensitivity, specificity, ppv, npv, f1``,
        each threshold metric's Wilson interval (``<metric>_low``, ``<metric>_high``)
        and the confusion counts ``tp, fp, tn, fn``.
    delong : DataFrame
        Pairwise paired DeLong tests per cohort: ``cohort, kind, model_a, model_b,
        difference, ci_low, ci_high, z, p_value``; ``kind`` is ``"apparent"`` on the
        training cohort (the models were fitted on it), else ``"held-out"``.
    calibration : DataFrame
        Index ``(model, cohort)``: Hosmer-Lemeshow ``hl_statistic, hl_df,
        hl_p_value`` (df rule ``development`` on train, ``external`` elsewhere),
        ``brier, intercept, slope`` and ``note`` (why a test could not be computed,
        e.g. too few distinct probabilities; its values are then NaN).
    table1 : DataFrame
        The paper's Table 1 (:func:`thyronet.metrics.baseline_table`).
    classifier_scores : DataFrame
        Candidate classifiers of Models 4 and 5: ``model, classifier, score,
        rank, chosen, selected_by``.
    selected_features : DataFrame
        Features reaching the combined model's classifier: ``feature, source,
        p_value, lasso_coef``.
    feature_counts : dict
        ``deep_features``, ``pca_components``, ``clinical_features``,
        ``after_pvalue``, ``after_lasso`` of the combined model.
    figures : dict of str to FigureRecord
    notes : list of str
        Things the report should mention (skipped steps, fallbacks).
    timings : dict of str to float
        Seconds per step.
    out_dir : Path or None
    statistics : dict
        Calibration summaries, optimism correction, reclassification and the models
        indistinguishable from chance (:mod:`thyronet.study._statistics`); its
        ``metrics`` entry holds the blocks ``metrics.json`` adds per (model, cohort).
    training_inputs : dict of str to TrainingInputs
        For the cross-fitted models fitted in this run: the training cohort's
        first-step output (out-of-fold deep features) and classifier input as ``fit``
        saw them.
    cross_fitted : list of str
        Models whose training-cohort (apparent) predictions are those of the
        classifier on the out-of-fold deep features it was fitted on.
    """

    config: StudyConfig
    models: dict[str, Any]
    model_status: dict[str, str]
    predictions: pd.DataFrame
    thresholds: dict[str, float]
    performance: pd.DataFrame
    delong: pd.DataFrame
    calibration: pd.DataFrame
    table1: pd.DataFrame
    classifier_scores: pd.DataFrame
    selected_features: pd.DataFrame
    feature_counts: dict[str, Any]
    figures: dict[str, FigureRecord] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    out_dir: Path | None = None
    statistics: dict[str, Any] = field(default_factory=dict)
    threshold_sources: dict[str, str] = field(default_factory=dict)
    feature_columns: list[str] = field(default_factory=list)
    per_center: pd.DataFrame = field(default_factory=pd.DataFrame)
    training_inputs: dict[str, Any] = field(default_factory=dict, repr=False)
    cross_fitted: list[str] = field(default_factory=list)

    @property
    def cohorts(self) -> list[str]:
        """Cohorts evaluated, in the paper's order."""
        present = set(self.predictions[COHORT_COLUMN])
        return [c for c in COHORTS if c in present]

    @property
    def chosen_classifiers(self) -> dict[str, str]:
        """Winning classifier of Models 4 and 5."""
        table = self.classifier_scores
        if table.empty:
            return {}
        chosen = table[table["chosen"]]
        return dict(zip(chosen["model"], chosen["classifier"], strict=True))

    def auc(self, model: str, cohort: str) -> float:
        """AUC of ``model`` on ``cohort``."""
        return float(self.performance.loc[(model, cohort), "auc"])

    def delong_p(self, model_a: str, model_b: str, cohort: str) -> float:
        """Paired DeLong P value of two models on one cohort."""
        d = self.delong
        hit = d[
            (d["cohort"] == cohort)
            & (
                ((d["model_a"] == model_a) & (d["model_b"] == model_b))
                | ((d["model_a"] == model_b) & (d["model_b"] == model_a))
            )
        ]
        if hit.empty:
            raise KeyError(f"no DeLong test of {model_a!r} vs {model_b!r} on {cohort!r}")
        return float(hit["p_value"].iloc[0])

    def metrics(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``metrics.json``: ``{model: {cohort: {auc, auc_ci, accuracy, ...}}}``."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for (model, cohort), row in self.performance.iterrows():
            cal = self.calibration.loc[(model, cohort)]
            out.setdefault(model, {})[cohort] = {
                "n": int(row["n"]),
                "n_positive": int(row["n_positive"]),
                "auc": float(row["auc"]),
                "auc_ci": [float(row["auc_low"]), float(row["auc_high"])],
                "threshold": float(row["threshold"]),
                **{
                    key: value
                    for metric in BinarySummary.METRICS
                    for key, value in (
                        (metric, _num(row[metric])),
                        (f"{metric}_ci", [_num(row[f"{metric}_low"]), _num(row[f"{metric}_high"])]),
                    )
                },
                "confusion": {k: int(row[k]) for k in ("tp", "fp", "tn", "fn")},
                "hosmer_lemeshow": {
                    "statistic": _num(cal["hl_statistic"]),
                    "df": (int(cal["hl_df"]) if np.isfinite(cal["hl_df"]) else None),
                    "p_value": _num(cal["hl_p_value"]),
                },
                "brier": _num(cal["brier"]),
                "calibration_intercept": _num(cal["intercept"]),
                "calibration_slope": _num(cal["slope"]),
            }
        for (model, cohort), block in self.statistics.get("metrics", {}).items():
            out.setdefault(model, {}).setdefault(cohort, {}).update(block)
        return out


def _num(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None

"""The TRIPOD+AI (2024) checklist of a study and its participant-flow diagram (item 20a).

:func:`tripod_table` gives one row per checklist item that software can fill (the
value from this study, or where the report shows it) and marks the rest "to be
completed by the authors". :func:`flow_figure` draws the participant flow from the
cohort counts. Reference: Collins GS et al. TRIPOD+AI statement. BMJ 2024;385:e078378.
"""

from __future__ import annotations

import platform

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sklearn

from thyronet import __version__
from thyronet.metrics import parse_threshold_rule
from thyronet.schema import CLINICAL_COLUMNS, COHORT_COLUMN, LABEL_COLUMN
from thyronet.study._figures import _record
from thyronet.study._labels import COHORT_LABELS, MODEL_LABELS, classifier_label
from thyronet.study._results import FigureRecord, StudyResults

__all__ = ["flow_figure", "tripod_table"]

AUTHORS = "to be completed by the authors"
COLUMNS = ["item", "topic", "status", "value", "where"]


def _counts(results: StudyResults) -> str:
    pred = results.predictions
    parts = []
    for cohort in results.cohorts:
        part = pred[pred[COHORT_COLUMN] == cohort]
        parts.append(
            f"{COHORT_LABELS[cohort]}: {len(part)} patients, {int(part[LABEL_COLUMN].sum())} "
            "CLNM events"
        )
    return "; ".join(parts)


def _missing(frame: pd.DataFrame) -> str:
    cols = [c for c in CLINICAL_COLUMNS if c in frame.columns]
    missing = frame[cols].isna().sum()
    missing = missing[missing > 0]
    if missing.empty:
        return "No missing clinical values in the analysed cohort file."
    return "Missing values: " + ", ".join(f"{c} {int(n)}" for c, n in missing.items()) + "."


def _versions() -> str:
    parts = [f"thyronet {__version__}", f"Python {platform.python_version()}"]
    parts.append(f"scikit-learn {sklearn.__version__}")
    try:
        import torch  # the study has imported it already when it trained a CNN
    except ImportError:  # a study of plain scikit-learn models without torch installed
        pass
    else:
        parts.append(f"PyTorch {torch.__version__}")
    return ", ".join(parts)


def _chosen(chosen: dict[str, str]) -> str:
    return ", ".join(f"{model}: {classifier_label(name)}" for model, name in chosen.items())


def _stopping(cfg) -> str:
    if cfg.early_stopping_on == "train_split":
        return f"a stratified {cfg.early_stopping_fraction:.0%} split of the training cohort"
    return f"the {cfg.early_stopping_on} cohort (the paper's protocol)"


def _cross_fitting(cfg) -> str:
    if cfg.feature_cv:
        return f"cross-fitted ({cfg.feature_cv} folds: out-of-fold CNN features)"
    return "extracted in-sample by the CNN fitted on them (the paper's protocol)"


def _selection(results: StudyResults) -> str:
    table = results.classifier_scores
    by = set(table.loc[table["chosen"], "selected_by"]) if len(table) else set()
    if by == {"validation"}:
        return "AUC on the validation (tuning) cohort"
    if by and "validation" not in by:
        return "cross-validated AUC on the training cohort"
    return "AUC (see the classifier tables)"


def _chance(results: StudyResults) -> str:
    pairs = results.statistics.get("chance", [])
    if not pairs:
        return "Every model's AUC CI excludes 0.5 in every cohort."
    return "AUC CI includes 0.5: " + ", ".join(
        f"{MODEL_LABELS.get(m, m)} ({COHORT_LABELS.get(c, c).lower()})" for m, c in pairs
    )


def tripod_table(results: StudyResults, frame: pd.DataFrame) -> pd.DataFrame:
    """The TRIPOD+AI items this study can fill, and the author-only ones marked as such.

    Columns ``item, topic, status, value, where``; ``status`` is ``reported`` or
    ``to be completed by the authors``.
    """
    cfg = results.config
    train = results.predictions[results.predictions[COHORT_COLUMN] == "train"]
    n_events = int(train[LABEL_COLUMN].sum())
    n_candidates = len([c for c in CLINICAL_COLUMNS if c in frame.columns]) + cfg.pca_components
    chosen = results.chosen_classifiers
    rows = [
        (
            "10",
            "Sample size",
            f"{_counts(results)}. Training events per candidate predictor of the combined "
            f"model: {n_events} / {n_candidates} = {n_events / max(n_candidates, 1):.1f}. "
            f"Justification of the sample size: {AUTHORS}.",
            "Patients; Table 1",
        ),
        ("11", "Missing data", _missing(frame), "Patients"),
        (
            "12a",
            "How the data were used",
            "; ".join(f"{c}: {role}" for c, role in _roles(results).items()),
            "study.json (cohort_roles); Methods of this report",
        ),
        (
            "12b",
            "Predictor handling",
            f"Clinical indicators encoded by ClinicalEncoder; longitudinal and transverse ROIs "
            f"resized to {cfg.image_size} px and fused ('{cfg.fusion}'); deep features "
            f"compressed by PCA to {cfg.pca_components} components, standardised, filtered "
            f"(univariate P < {cfg.pvalue_alpha}) and selected by LASSO.",
            "Combined model section",
        ),
        (
            "12c",
            "Model type, building, tuning, internal validation",
            f"CNN {cfg.backbone} (early stopping on {_stopping(cfg)}); deep features of "
            f"the training cohort {_cross_fitting(cfg)}; classifiers chosen by "
            f"{_selection(results)} ({_chosen(chosen)}); "
            f"internal validation by {cfg.optimism_bootstrap} bootstrap refits (optimism).",
            "Combined model; Optimism-corrected training performance",
        ),
        (
            "12e",
            "Performance measures",
            "AUC with DeLong 95% CI; paired DeLong tests; calibration slope, intercept, "
            "calibration-in-the-large, ICI, E90, Brier, Spiegelhalter z, Hosmer-Lemeshow; "
            "decision curves with bootstrap bands; continuous NRI and IDI; accuracy, "
            "sensitivity, specificity at the threshold.",
            "Performance, Calibration and clinical utility",
        ),
        ("12f", "Model updating or recalibration", "None performed.", "-"),
        (
            "12g",
            "How predictions were calculated in evaluation",
            "The fitted models, unchanged, predicted every patient of every cohort "
            "(predictions.csv).",
            "predictions.csv",
        ),
        (
            "13",
            "Class imbalance",
            f"Training prevalence {train[LABEL_COLUMN].mean():.1%}; CNN class weights: "
            + (
                f"{cfg.class_weight} (the CNNs' probabilities are corrected back to the "
                "training prevalence by subtracting the weights' log ratio from the logit)"
                if cfg.class_weight
                else "none"
            )
            + "; no resampling.",
            "Configuration",
        ),
        ("14", "Fairness", AUTHORS, "-"),
        (
            "15",
            "Model output and thresholds",
            "Predicted probability of CLNM; threshold: "
            + parse_threshold_rule(cfg.threshold).describe()
            + f" ({', '.join(f'{m} {t:.3f}' for m, t in results.thresholds.items())}).",
            "Classification at the chosen thresholds",
        ),
        (
            "16",
            "Training versus evaluation data",
            "Cohort characteristics compared by Kruskal-Wallis tests (continuous) and "
            "chi-square or exact tests (categorical; Table 1 names the test per variable).",
            "Table 1",
        ),
        ("17", "Ethical approval", AUTHORS, "-"),
        ("18a-e", "Funding, conflicts, protocol, registration, data sharing", AUTHORS, "-"),
        (
            "18f",
            "Code availability",
            f"{_versions()}; the configuration is config.toml, the fitted models "
            "models/<name>/ with checksums.",
            "Files",
        ),
        ("19", "Patient and public involvement", AUTHORS, "-"),
        ("20a", "Participant flow", _counts(results), "Figure: participant flow"),
        ("20b", "Participant characteristics", "Table 1 by cohort.", "Table 1"),
        (
            "20c",
            "Development vs evaluation distributions",
            "Table 1 P values across cohorts.",
            "Table 1",
        ),
        ("21", "Participants and events per analysis", _counts(results), "Patients"),
        (
            "22",
            "Full model specification",
            "The fitted models (models/<name>/model.skops and weights/*.safetensors) and, "
            "for logistic classifiers, the nomogram.",
            "Files; nomogram",
        ),
        (
            "23a",
            "Performance with CIs",
            "AUC (DeLong), calibration slope and intercept (Wald), sensitivity, specificity, "
            "PPV, NPV, accuracy and F1 (Wilson) with 95% CIs for every model and cohort. "
            + _chance(results),
            "AUC table; calibration table; decision curves",
        ),
        (
            "23b",
            "Heterogeneity across clusters",
            (
                "AUC (95% CI) of every model in each centre of each cohort."
                if not results.per_center.empty
                else f"The cohort has no centre column: {AUTHORS}."
            ),
            "AUC per centre" if not results.per_center.empty else "-",
        ),
        ("24", "Model updating results", "No updating performed.", "-"),
    ]
    table = pd.DataFrame(
        [
            (item, topic, AUTHORS if value == AUTHORS else "reported", value, where)
            for item, topic, value, where in rows
        ],
        columns=COLUMNS,
    )
    return table


def _roles(results: StudyResults) -> dict[str, str]:
    return {
        "train": "fitting",
        "validation": "tuning (classifier choice"
        + ("; CNN early stopping" if results.config.early_stopping_on == "validation" else "")
        + ")",
        "test": "evaluation only",
    }


def flow_figure(results: StudyResults) -> FigureRecord:
    """Participant flow (TRIPOD+AI item 20a) from the cohort counts."""
    pred = results.predictions
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    box = dict(boxstyle="round,pad=0.5", fc="#f2f6fb", ec="#4a6fa5")
    top = (
        f"Patients in the cohort file\nn = {len(pred)} ({int(pred[LABEL_COLUMN].sum())} CLNM)\n"
        "exclusions before this file: see Methods"
    )
    ax.text(0.5, 0.85, top, ha="center", va="center", fontsize=10, bbox=box)
    cohorts = results.cohorts
    xs = np.linspace(0.17, 0.83, len(cohorts)) if len(cohorts) > 1 else [0.5]
    for x, cohort in zip(xs, cohorts, strict=True):
        part = pred[pred[COHORT_COLUMN] == cohort]
        role = _roles(results).get(cohort, "")
        text = (
            f"{COHORT_LABELS[cohort]}\nn = {len(part)}\nCLNM {int(part[LABEL_COLUMN].sum())} "
            f"({part[LABEL_COLUMN].mean():.0%})\n{role}"
        )
        ax.annotate(
            "",
            xy=(x, 0.42),
            xytext=(0.5, 0.68),
            arrowprops=dict(arrowstyle="->", color="#4a6fa5"),
        )
        ax.text(x, 0.25, text, ha="center", va="center", fontsize=9.5, bbox=box, wrap=True)
    return _record(
        fig,
        "participant_flow",
        "Participant flow",
        "Patients in each cohort with CLNM events and the cohort's use (TRIPOD+AI item 20a). "
        "Every patient of the file was analysed; exclusions before it are for the authors "
        "to report.",
        "tripod",
    )

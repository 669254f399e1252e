"""The study's figures: ROC, calibration and decision curves, LASSO, Grad-CAM and SHAP.

Each figure becomes a :class:`FigureRecord` (PNG and SVG bytes, title, caption,
report section). The explanations come from :mod:`thyronet.explain`; a model they
cannot explain (a user's own model without a CNN, a classifier SHAP cannot take)
gets a note in the report instead of a figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from thyronet._walk import walk_fitted
from thyronet.explain import (
    GradCAMExplainer,
    ShapExplainer,
    plot_gradcam_gallery,
    plot_shap_bar,
    plot_shap_summary,
    plot_shap_waterfall,
)
from thyronet.plotting import (
    figure_bytes,
    plot_calibration_curves,
    plot_decision_curves,
    plot_lasso_cv,
    plot_lasso_path,
    plot_roc_curves,
)
from thyronet.schema import COHORT_COLUMN, ID_COLUMN, LABEL_COLUMN
from thyronet.selection import LassoSelector
from thyronet.study._fit import _positive_proba
from thyronet.study._labels import CALIBRATION_MODELS, COHORT_LABELS, MODEL_LABELS, MODEL_NAMES
from thyronet.study._results import FigureRecord, StudyResults
from thyronet.study._tables import _names_out


def _record(fig, name: str, title: str, caption: str, section: str) -> FigureRecord:
    record = FigureRecord(
        name, title, caption, figure_bytes(fig, "png"), figure_bytes(fig, "svg"), section
    )
    plt.close(fig)
    return record


def _performance_figures(results: StudyResults) -> dict[str, FigureRecord]:
    cfg = results.config
    pred = results.predictions
    figures: dict[str, FigureRecord] = {}
    models = [m for m in MODEL_NAMES if m in pred.columns]
    cal_models = [m for m in CALIBRATION_MODELS if m in pred.columns]
    for cohort in results.cohorts:
        part = pred[pred[COHORT_COLUMN] == cohort]
        y = part[LABEL_COLUMN].to_numpy()
        label = COHORT_LABELS.get(cohort, cohort)
        fig = plot_roc_curves(
            y, {MODEL_LABELS[m]: part[m] for m in models}, title=f"{label} (n = {len(part)})"
        )
        figures[f"roc_{cohort}"] = _record(
            fig,
            f"roc_{cohort}",
            f"ROC curves, {label.lower()}",
            f"ROC curves of the five models in the {label.lower()}; the legend gives each "
            "model's AUC with its 95% DeLong confidence interval (also in the AUC table).",
            "roc",
        )
        fig = plot_calibration_curves(
            y,
            {MODEL_LABELS[m]: part[m] for m in cal_models},
            title=label,
            n_bins=cfg.calibration_bins,
            n_groups=cfg.hl_groups,
            sample="development" if cohort == "train" else "external",
        )
        figures[f"calibration_{cohort}"] = _record(
            fig,
            f"calibration_{cohort}",
            f"Calibration curves, {label.lower()}",
            f"Observed fraction of CLNM against predicted probability in the {label.lower()}: "
            "lowess calibration curve with its 95% bootstrap band (shaded), observed fractions "
            "in quantile bins (dots); the legend gives the Hosmer-Lemeshow P value. Slope and "
            "intercept are in the calibration table.",
            "calibration",
        )
        fig = plot_decision_curves(
            y,
            {MODEL_LABELS[m]: part[m] for m in cal_models},
            title=label,
            n_bootstrap=200,
            random_state=cfg.random_state,
        )
        figures[f"decision_{cohort}"] = _record(
            fig,
            f"decision_{cohort}",
            f"Decision curves, {label.lower()}",
            f"Net benefit against threshold probability in the {label.lower()}, with the "
            "treat-all and treat-none strategies; shaded: 95% stratified bootstrap band (200 "
            "samples) of each model's net benefit.",
            "decision",
        )
    return figures


def _lasso_figures(model) -> dict[str, FigureRecord]:
    """Coefficient path and cross-validation curve of the combined model's LASSO step."""
    lasso = next(
        (
            s
            for _, s in walk_fitted(model)
            if isinstance(s, LassoSelector) and hasattr(s, "coef_path_")
        ),
        None,
    )
    if lasso is None:
        return {}
    steps = model.steps if isinstance(model, Pipeline) else []
    idx = next((i for i, (_, s) in enumerate(steps) if s is lasso), None)
    names = _names_out(model[:idx]) if idx else None
    return {
        "lasso_path": _record(
            plot_lasso_path(lasso, feature_names=names),
            "lasso_path",
            "LASSO coefficient path",
            "Coefficients of the features that passed the P-value filter along the LASSO "
            "regularisation path; the dashed line marks the cross-validated alpha.",
            "combined",
        ),
        "lasso_cv": _record(
            plot_lasso_cv(lasso),
            "lasso_cv",
            "LASSO cross-validation",
            "Cross-validated error (mean and SD over folds) against the regularisation "
            "strength; the dashed line marks the chosen alpha.",
            "combined",
        ),
    }


def _gallery_patients(results: StudyResults, frame: pd.DataFrame) -> pd.DataFrame:
    """Test (else validation) patients for the Grad-CAM gallery: top-risk positives, then
    lowest-risk negatives."""
    cfg = results.config
    pred = results.predictions
    cohort = "test" if "test" in results.cohorts else "validation"
    part = pred[pred[COHORT_COLUMN] == cohort]
    k = cfg.gradcam_patients
    pos = part[part[LABEL_COLUMN] == 1].sort_values("dl_f", ascending=False)
    neg = part[part[LABEL_COLUMN] == 0].sort_values("dl_f")
    n_pos = min(len(pos), (k + 1) // 2)
    chosen = pd.concat([pos.head(n_pos), neg.head(k - n_pos)])
    return frame.loc[chosen.index]


def _gradcam_figures(results: StudyResults, frame: pd.DataFrame) -> dict[str, FigureRecord]:
    """Grad-CAM gallery of DL_F (the paper's Figure 3); a note when DL_F holds no CNN."""
    try:
        explainer = GradCAMExplainer(results.models["dl_f"])
    except TypeError as err:  # GradCAMExplainer: the model holds no SkorchCNN
        results.notes.append(f"No Grad-CAM gallery of {MODEL_LABELS['dl_f']}: {err}.")
        return {}
    patients = _gallery_patients(results, frame)
    X = patients[results.feature_columns]
    try:  # one map per view where the input has one channel per view (fusion "stack")
        result = explainer.explain(X, target="positive", per_view=True)
        how = (
            "each view's own Grad-CAM map (the model shown that view, the other view's channel "
            "replaced by its mean intensity)"
        )
    except ValueError:  # explain(per_view=True): not one channel per view (e.g. "mosaic")
        result = explainer.explain(X, target="positive")
        how = "the Grad-CAM heatmap of the fused image"
    fig = plot_gradcam_gallery(
        result, labels=patients[LABEL_COLUMN].tolist(), ids=patients[ID_COLUMN].tolist()
    )
    return {
        "gradcam": _record(
            fig,
            "gradcam",
            "Grad-CAM of the dual-channel model",
            f"Longitudinal ROI, transverse ROI and {how} of Model 3 (DL_F) overlaid on each "
            "view, masked to the image (no heat on the padding), for the highest-risk "
            "CLNM-positive and lowest-risk negative patients of the held-out cohort (the "
            "paper's Figure 3). A map shows where the last convolutional layer responded, "
            "not what predicts CLNM.",
            "dl",
        )
    }


def _shap_figures(results: StudyResults, frame: pd.DataFrame) -> dict[str, FigureRecord]:
    """SHAP summary, bar and waterfall of the combined model (the paper's Figure 6).

    A note instead when SHAP cannot explain the model: :class:`thyronet.explain.ShapExplainer`
    raises ``ValueError`` for a classifier that is not binary, features that are not
    2-D (a CNN) or a tree model shap's TreeExplainer does not support.
    """
    cfg = results.config
    model = results.models["combined"]
    train = frame[frame[COHORT_COLUMN] == "train"]
    if len(train) > cfg.shap_max_samples:
        train = train.sample(cfg.shap_max_samples, random_state=cfg.random_state)
    ids = train[ID_COLUMN]
    train = train[results.feature_columns]  # what the models see as X
    try:
        explainer = ShapExplainer(model, train)
    except ValueError as err:
        results.notes.append(f"No SHAP figures of {MODEL_LABELS['combined']}: {err}.")
        return {}
    explanation = explainer(train)
    highest = int(np.argmax(_positive_proba(model, train)))
    return {
        "shap_summary": _record(
            plot_shap_summary(explanation),
            "shap_summary",
            "SHAP summary of the combined model",
            "SHAP value of each feature reaching the combined model's classifier for each "
            "training patient, coloured by the feature's value (the paper's Figure 6).",
            "combined",
        ),
        "shap_bar": _record(
            plot_shap_bar(explanation),
            "shap_bar",
            "Mean |SHAP| of the combined model",
            "Mean absolute SHAP value per feature over the training patients.",
            "combined",
        ),
        "shap_waterfall": _record(
            plot_shap_waterfall(explanation, highest, patient_id=ids.iloc[highest]),
            "shap_waterfall",
            "SHAP waterfall of one patient",
            f"Contributions to the prediction of training patient "
            f"{ids.iloc[highest]}, the highest predicted risk.",
            "combined",
        ),
    }

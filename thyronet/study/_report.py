"""The study's report: a self-contained HTML page written like the paper's Results section.

:func:`render_report` turns a :class:`StudyResults` into one HTML page (the Jinja2
template ``templates/report.html.j2``): figures embedded as base64 PNG, tables, and
the narrative of the paper's Results (cohort characteristics; the dual-channel model
against the single-view ones with DeLong P values; the clinical model and its
classifier; the combined model, its selected features and classifier; calibration;
explainability), with this study's numbers. The page needs no other file and no network.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from thyronet import __version__
from thyronet.backbones import resolve_pretrained
from thyronet.metrics import parse_threshold_rule
from thyronet.plotting import figure_img
from thyronet.study._labels import COHORT_LABELS, MODEL_LABELS, classifier_label
from thyronet.study._results import FigureRecord, StudyResults
from thyronet.study._statistics import calibration_text, report_statistics
from thyronet.study._tables import _report_tables

__all__ = ["render_report", "write_report"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("thyronet.study", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
_ENV.globals["figure_img"] = lambda png, alt: Markup(figure_img(png, alt))

_FILES = (
    "metrics.json, study.json, config.toml, predictions.csv, tables/*.csv, "
    "figures/*.png and *.svg, models/<name>/ (model.json, model.skops, "
    "weights/*.safetensors), report.html"
)


# --------------------------------------------------------------------------- formatting
def _p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "P not computable"
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _auc(results: StudyResults, model: str, cohort: str) -> str:
    row = results.performance.loc[(model, cohort)]
    return f"{row['auc']:.3f} (95% CI: {row['auc_low']:.3f}–{row['auc_high']:.3f})"


# --------------------------------------------------------------------------- narrative
def _text_patients(results: StudyResults) -> str:
    pred = results.predictions
    n = len(pred)
    parts = []
    for cohort in results.cohorts:
        part = pred[pred["cohort"] == cohort]
        parts.append(
            f"{len(part)} in the {COHORT_LABELS[cohort].lower()} "
            f"({int(part['clnm'].sum())} with CLNM, {part['clnm'].mean():.1%})"
        )
    text = f"The study included {n} patients: " + "; ".join(parts) + "."
    pvals = pd.to_numeric(results.table1.get("p_value"), errors="coerce").dropna()
    if len(pvals):
        sig = int((pvals < 0.05).sum())
        text += (
            f" Comparing the clinical indicators between the cohorts gave P values from "
            f"{pvals.min():.3f} to {pvals.max():.3f}; {sig} of {len(pvals)} indicators "
            f"differed at P < 0.05 (Table 1)."
        )
    return text


def _compare(results: StudyResults, a: str, b: str, cohort: str) -> str:
    diff = results.auc(a, cohort) - results.auc(b, cohort)
    p = results.delong_p(a, b, cohort)
    word = "higher than" if diff > 0 else "lower than" if diff < 0 else "equal to"
    qual = "significantly " if p < 0.05 and diff != 0 else ""
    return f"{qual}{word} that of {MODEL_LABELS[b]} ({_auc(results, b, cohort)}; DeLong {_p(p)})"


def _text_dual_channel(results: StudyResults) -> str:
    sentences = []
    for cohort in results.cohorts:
        apparent = " (apparent: the models were fitted on it)" if cohort == "train" else ""
        sentences.append(
            f"In the {COHORT_LABELS[cohort].lower()}{apparent}, the AUC of "
            f"{MODEL_LABELS['dl_f']} was {_auc(results, 'dl_f', cohort)}, "
            f"{_compare(results, 'dl_f', 'dl_l', cohort)} and "
            f"{_compare(results, 'dl_f', 'dl_c', cohort)}."
        )
    if "gradcam" in results.figures:
        chance = [c for m, c in results.statistics.get("chance", []) if m == "dl_f"]
        sentences.append(
            "The Grad-CAM maps of Model 3 (figure below) show where its last convolutional "
            "layer responded for a few patients. With one channel per view, each view's map "
            "is computed with the other view replaced by its mean: it shows where in that view "
            "the network responds, not how the two unregistered views interact nor how much "
            "each view moves the prediction (the occlusion analysis measures that), and it is "
            "not evidence of what predicts CLNM."
            + (
                " Model 3's AUC CI includes 0.5 in the "
                + ", ".join(COHORT_LABELS[c].lower() for c in chance)
                + ": these maps explain a model with no demonstrated discrimination there."
                if chance
                else ""
            )
        )
    return " ".join(sentences)


def _classifier_sentence(results: StudyResults, model: str) -> str:
    table = results.classifier_scores
    rows = table[table["model"] == model]
    if rows.empty:
        return ""
    chosen = rows[rows["chosen"]].iloc[0]
    by = (
        "on the validation cohort"
        if chosen["selected_by"] == "validation"
        else "by cross-validation on the training cohort"
    )
    others = ", ".join(
        f"{classifier_label(r.classifier)} {r.score:.3f}" for r in rows.itertuples() if not r.chosen
    )
    text = (
        f"Comparing the candidate classifiers by AUC {by}, "
        f"{classifier_label(chosen['classifier'])} scored "
        f"highest ({chosen['score']:.3f}; {others or 'no other candidate'}) and was chosen "
        f"for {MODEL_LABELS[model]}."
    )
    aucs = "; ".join(
        f"{COHORT_LABELS[c].lower()}{' (apparent)' if c == 'train' else ''} "
        f"{_auc(results, model, c)}"
        for c in results.cohorts
    )
    return f"{text} Its AUCs were: {aucs}."


def _text_combined_features(results: StudyResults) -> str:
    c = results.feature_counts
    sel = results.selected_features
    if not c and sel.empty:
        return "The combined model exposes no feature-selection details."
    parts = []
    if "deep_features" in c:
        parts.append(
            f"For the fused dual-channel images, {c['deep_features']} deep-learning "
            "features were extracted by the fine-tuned DL_F network"
        )
    if "pca_components" in c:
        parts.append(
            f"compressed to {c['pca_components']} principal components and joined "
            f"with {c.get('clinical_features', 'the')} encoded clinical features"
        )
    text = (", ".join(parts) + ". ") if parts else ""
    if "after_pvalue" in c:
        text += (
            f"After standardisation, {_n(c['after_pvalue'], 'feature')} passed the "
            f"univariate P-value filter (P < {results.config.pvalue_alpha}) "
        )
    if "after_lasso" in c:
        deep = int((sel["source"] == "deep").sum())
        clinical = sel.loc[sel["source"] == "clinical", "feature"].tolist()
        text += (
            f"and LASSO kept {c['after_lasso']}: {_n(deep, 'deep-learning feature')} and "
            f"{_n(len(clinical), 'clinical feature')}"
            + (f" ({', '.join(clinical)})" if clinical else "")
            + "."
        )
    return text


def _text_delong(results: StudyResults) -> str:
    sentences = []
    for cohort in results.cohorts:
        apparent = " (apparent: the models were fitted on it)" if cohort == "train" else ""
        sentences.append(
            f"In the {COHORT_LABELS[cohort].lower()}{apparent}, the AUC of "
            f"{MODEL_LABELS['combined']} was "
            f"{_compare(results, 'combined', 'dl_f', cohort)} and "
            f"{_compare(results, 'combined', 'clinical', cohort)}."
        )
    if "shap_summary" in results.figures:
        sentences.append(
            "The SHAP figures below show the contributions of the deep-learning "
            "and clinical features to Model 4."
        )
    return " ".join(sentences)


def _text_thresholds(results: StudyResults) -> str:
    rule = parse_threshold_rule(results.config.threshold)
    if rule.kind == "fixed":
        return f"All models use the fixed probability threshold {rule.target:.3f}."
    text = (
        f"Each model's decision threshold is chosen by {rule.describe()} "
        f"(config threshold = {results.config.threshold!r}) and applied unchanged to every "
        "cohort; thyronet predict uses the same threshold for risk groups."
    )
    if rule.cohort == "train":
        text += (
            " Thresholds chosen on the training predictions are apparent (the paper's "
            "protocol): the models have seen those patients."
        )
    else:
        text += " Threshold metrics on the validation cohort are therefore not independent."
    return text


# --------------------------------------------------------------------------- public
def _figures_by_section(results: StudyResults) -> dict[str, list[FigureRecord]]:
    by_section: dict[str, list[FigureRecord]] = {}
    for record in results.figures.values():
        by_section.setdefault(record.section, []).append(record)
    return by_section


def _runtime(results: StudyResults) -> str:
    total = results.timings.get("total")
    if total is None:
        return "not recorded"
    return f"{total:.0f} s" if total < 120 else f"{total / 60:.1f} min"


def _narrative(results: StudyResults) -> dict[str, str]:
    out = results.out_dir
    return {
        "patients": _text_patients(results),
        "dual_channel": _text_dual_channel(results),
        "clinical": _classifier_sentence(results, "clinical"),
        "combined_features": _text_combined_features(results),
        "combined": _classifier_sentence(results, "combined"),
        "delong": _text_delong(results),
        "calibration": calibration_text(results),
        "thresholds": _text_thresholds(results),
        "files": (
            f"Written to {out}: {_FILES}."
            if out is not None
            else "This study was run without an output folder."
        ),
    }


def render_report(results: StudyResults, *, title: str | None = None) -> str:
    """The HTML text of the report of a study.

    Parameters
    ----------
    results : StudyResults
        From :func:`thyronet.study.run_study`.
    title : str, optional
        Page title.

    Returns
    -------
    str
        A complete HTML document; images are embedded (``data:image/png;base64``).

    Examples
    --------
    >>> from thyronet.report import render_report
    >>> callable(render_report)
    True
    """
    cfg = results.config
    weights = resolve_pretrained(cfg.backbone, cfg.pretrained)
    pretrained = {True: "ImageNet weights", False: "trained from scratch"}.get(
        weights, f"weights: {weights}"
    )
    notes = list(results.notes)
    loaded = [m for m, s in results.model_status.items() if s == "loaded"]
    if loaded:
        notes.append(f"Resumed: {', '.join(loaded)} loaded from the output folder, not refitted.")
    tables = _report_tables(results)
    stats = report_statistics(results, tables)
    if stats["chance"]:
        notes.append(stats["chance"])
    return _ENV.get_template("report.html.j2").render(
        title=title or "thyronet study: dual-channel deep learning for occult CLNM in PTMC",
        version=__version__,
        cfg=cfg,
        pretrained=pretrained,
        runtime=_runtime(results),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        notes=notes,
        text=_narrative(results),
        tables=tables,
        stats=stats,
        figs=_figures_by_section(results),
    )


def write_report(
    results: StudyResults, path: str | os.PathLike, *, title: str | None = None
) -> Path:
    """Write :func:`render_report` to ``path`` (UTF-8) and return the path.

    Examples
    --------
    >>> from thyronet.report import write_report
    >>> callable(write_report)
    True
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(results, title=title), encoding="utf-8")
    return target

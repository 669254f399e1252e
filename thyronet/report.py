"""A self-contained HTML report of a study, written like the paper's Results section.

:func:`render_report` turns a :class:`thyronet.study.StudyResults` into one HTML
page: figures embedded as base64 PNG, tables as HTML, and the narrative of the
paper's Results (cohort characteristics; the dual-channel model against the
single-view ones with DeLong P values; the clinical model and its classifier; the
combined model, its selected features and classifier; calibration; explainability),
with this study's numbers. The page needs no other file and no network.
"""

from __future__ import annotations

import html
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from thyronet.plotting import figure_img

if TYPE_CHECKING:  # pragma: no cover
    from thyronet.study import FigureRecord, StudyResults

__all__ = ["render_report", "write_report"]

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="thyronet {{ version }}">
<title>{{ title }}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.5; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
.meta { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
.figures { display: flex; flex-wrap: wrap; gap: 1.2em; }
figure { margin: 0.6em 0; max-width: 100%; }
figure.third { flex: 1 1 31%; min-width: 300px; }
figure.half { flex: 0 1 47%; min-width: 360px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #444; }
.note { background: #fff8e1; border-left: 4px solid #f0c36d; padding: 0.5em 0.8em; }
.small { font-size: 0.85em; color: #555; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="meta">Generated {{ generated }} by thyronet {{ version }}.
Backbone {{ cfg.backbone }} ({{ pretrained }}), {{ cfg.image_size }} px images, fusion
"{{ cfg.fusion }}", up to {{ cfg.max_epochs }} epochs; run time {{ runtime }}.</p>
{% for note in notes %}<p class="note">{{ note }}</p>
{% endfor %}

<h2 id="patients">Patients</h2>
<p>{{ text.patients }}</p>
{{ tables.cohorts | safe }}
<h3>Table 1. Clinical characteristics by cohort</h3>
<p class="small">Continuous variables: median (interquartile range), Kruskal-Wallis test;
categorical variables: n (%), chi-square test.</p>
{{ tables.table1 | safe }}

<h2 id="dual-channel">Performance of the dual-channel model</h2>
<p>{{ text.dual_channel }}</p>
<h3>AUC (95% CI) of every model in every cohort</h3>
{{ tables.auc | safe }}
{{ figs.dl | safe }}

<h2 id="clinical">Performance of the clinical model</h2>
<p>{{ text.clinical }}</p>
{{ tables.clinical_classifiers | safe }}

<h2 id="combined">Combined model: features, classifier and performance</h2>
<p>{{ text.combined_features }}</p>
<h3>Features reaching the classifier</h3>
{{ tables.selected | safe }}
<p>{{ text.combined }}</p>
{{ tables.combined_classifiers | safe }}
<div class="figures">{{ figs.roc | safe }}</div>
<p>{{ text.delong }}</p>
<h3>Pairwise DeLong tests</h3>
{{ tables.delong | safe }}
<div class="figures">{{ figs.combined | safe }}</div>

<h2 id="calibration">Calibration and clinical utility</h2>
<p>{{ text.calibration }}</p>
{{ tables.calibration | safe }}
<div class="figures">{{ figs.calibration | safe }}</div>
<div class="figures">{{ figs.decision | safe }}</div>

<h2 id="thresholds">Classification at the chosen thresholds</h2>
<p>{{ text.thresholds }}</p>
{{ tables.performance | safe }}

<h2 id="files">Files</h2>
<p class="small">{{ text.files }}</p>
<h3>Configuration</h3>
{{ tables.config | safe }}
<script>
// Marks how many embedded figures decoded (read by tests through a headless browser).
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  document.body.setAttribute("data-images", images.length);
  document.body.setAttribute("data-images-loaded", images.filter(function (img) {
    return img.complete && img.naturalWidth > 0; }).length);
});
</script>
</body>
</html>
"""


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


_P_COLUMNS = ("P", "HL P", "p_value", "Univariate P")


def _html_table(frame: pd.DataFrame, *, index: bool = False, digits: int = 3) -> str:
    def fmt(v):
        if isinstance(v, float | np.floating):
            return "" if not np.isfinite(v) else f"{v:.{digits}f}"
        return v

    def fmt_p(v):
        if isinstance(v, float | np.floating) and np.isfinite(v) and v < 0.001:
            return "< 0.001"
        return fmt(v)

    shown = frame.copy()
    for column in shown.columns:
        if shown[column].dtype.kind == "f":
            shown[column] = shown[column].map(fmt_p if column in _P_COLUMNS else fmt)
            shown[column] = shown[column].astype(object)
    return shown.to_html(index=index, na_rep="", border=0, escape=True)


def _figure(record: FigureRecord, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return (
        f'<figure{cls} id="fig-{html.escape(record.name)}">{figure_img(record.png, record.title)}'
        f"<figcaption><b>{html.escape(record.title)}.</b> {html.escape(record.caption)}"
        "</figcaption></figure>"
    )


def _labels():
    from thyronet.study import COHORT_LABELS, MODEL_LABELS

    return MODEL_LABELS, COHORT_LABELS


# --------------------------------------------------------------------------- narrative
def _text_patients(results: StudyResults) -> str:
    _, cohort_labels = _labels()
    pred = results.predictions
    n = len(pred)
    parts = []
    for cohort in results.cohorts:
        part = pred[pred["cohort"] == cohort]
        parts.append(
            f"{len(part)} in the {cohort_labels[cohort].lower()} "
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
    model_labels, _ = _labels()
    diff = results.auc(a, cohort) - results.auc(b, cohort)
    p = results.delong_p(a, b, cohort)
    word = "higher than" if diff > 0 else "lower than" if diff < 0 else "equal to"
    qual = "significantly " if p < 0.05 and diff != 0 else ""
    return f"{qual}{word} that of {model_labels[b]} ({_auc(results, b, cohort)}; DeLong {_p(p)})"


def _text_dual_channel(results: StudyResults) -> str:
    model_labels, cohort_labels = _labels()
    sentences = []
    for cohort in results.cohorts:
        sentences.append(
            f"In the {cohort_labels[cohort].lower()}, the AUC of {model_labels['dl_f']} was "
            f"{_auc(results, 'dl_f', cohort)}, {_compare(results, 'dl_f', 'dl_l', cohort)} and "
            f"{_compare(results, 'dl_f', 'dl_c', cohort)}."
        )
    if "gradcam" in results.figures:
        sentences.append(
            "Gradient-weighted class activation maps (Grad-CAM) of Model 3 show "
            "which regions of each view drove its predictions (figure below)."
        )
    return " ".join(sentences)


def _classifier_sentence(results: StudyResults, model: str) -> str:
    model_labels, cohort_labels = _labels()
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
    others = ", ".join(f"{r.classifier} {r.score:.3f}" for r in rows.itertuples() if not r.chosen)
    text = (
        f"Comparing the candidate classifiers by AUC {by}, {chosen['classifier']} scored "
        f"highest ({chosen['score']:.3f}; {others or 'no other candidate'}) and was chosen "
        f"for {model_labels[model]}."
    )
    aucs = "; ".join(
        f"{cohort_labels[c].lower()} {_auc(results, model, c)}" for c in results.cohorts
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
    model_labels, cohort_labels = _labels()
    sentences = []
    for cohort in results.cohorts:
        sentences.append(
            f"In the {cohort_labels[cohort].lower()}, the AUC of {model_labels['combined']} was "
            f"{_compare(results, 'combined', 'dl_f', cohort)} and "
            f"{_compare(results, 'combined', 'clinical', cohort)}."
        )
    if "shap_summary" in results.figures:
        sentences.append(
            "The SHAP figures below show the contributions of the deep-learning "
            "and clinical features to Model 4."
        )
    return " ".join(sentences)


def _text_calibration(results: StudyResults) -> str:
    from thyronet.study import CALIBRATION_MODELS

    model_labels, cohort_labels = _labels()
    cal = results.calibration
    sentences = []
    for cohort in results.cohorts:
        items = []
        for m in CALIBRATION_MODELS:
            if (m, cohort) in cal.index:
                items.append(f"{model_labels[m]} {_p(cal.loc[(m, cohort), 'hl_p_value'])}")
        pvals = [
            cal.loc[(m, cohort), "hl_p_value"]
            for m in CALIBRATION_MODELS
            if (m, cohort) in cal.index
        ]
        pvals = [p for p in pvals if np.isfinite(p)]
        if not pvals:
            verdict = "the test could not be computed"
        elif all(p > 0.05 for p in pvals):
            verdict = "no model departed significantly from good calibration"
        else:
            verdict = "at least one model departed significantly from good calibration"
        sentences.append(
            f"{cohort_labels[cohort]}: Hosmer-Lemeshow {', '.join(items)} — {verdict}."
        )
    return " ".join(sentences)


def _text_thresholds(results: StudyResults) -> str:
    rule = results.config.threshold
    if rule == "youden":
        return (
            "Each model's decision threshold is its Youden threshold (maximum sensitivity + "
            "specificity - 1) on the training cohort, applied unchanged to the other "
            "cohorts; thyronet predict uses the same threshold for risk groups."
        )
    return f"All models use the fixed probability threshold {float(rule):.3f}."


# --------------------------------------------------------------------------- tables
def _tables(results: StudyResults) -> dict[str, str]:
    from thyronet.study import MODEL_NAMES

    model_labels, cohort_labels = _labels()
    pred = results.predictions
    cohorts = pred.groupby("cohort")["clnm"].agg(["size", "sum", "mean"]).reindex(results.cohorts)
    cohorts = pd.DataFrame(
        {
            "Cohort": [cohort_labels[c] for c in cohorts.index],
            "Patients": cohorts["size"].astype(int).to_numpy(),
            "CLNM": cohorts["sum"].astype(int).to_numpy(),
            "CLNM rate": [f"{v:.1%}" for v in cohorts["mean"]],
        }
    )
    perf = results.performance
    auc = (
        perf["AUC (95% CI)"]
        .unstack("cohort")
        .reindex(
            index=[m for m in MODEL_NAMES if m in perf.index.get_level_values(0)],
            columns=results.cohorts,
        )
    )
    auc.index = [model_labels[m] for m in auc.index]
    auc.columns = [cohort_labels[c] for c in auc.columns]
    auc = auc.reset_index().rename(columns={"index": "Model"})

    def clf(model: str) -> str:
        t = results.classifier_scores
        t = t[t["model"] == model]
        if t.empty:
            return ""
        shown = t[["classifier", "score", "rank", "chosen"]].rename(
            columns={
                "classifier": "Classifier",
                "score": "AUC (selection)",
                "rank": "Rank",
                "chosen": "Chosen",
            }
        )
        shown["Chosen"] = shown["Chosen"].map({True: "yes", False: ""})
        return _html_table(shown)

    sel = results.selected_features.rename(
        columns={
            "feature": "Feature",
            "source": "Source",
            "p_value": "Univariate P",
            "lasso_coef": "LASSO coefficient",
        }
    )
    delong = results.delong.copy()
    delong["cohort"] = delong["cohort"].map(lambda c: cohort_labels.get(c, c))
    for col in ("model_a", "model_b"):
        delong[col] = delong[col].map(lambda m: model_labels.get(m, m))
    delong = delong.rename(
        columns={
            "cohort": "Cohort",
            "model_a": "Model A",
            "model_b": "Model B",
            "difference": "AUC A - B",
            "ci_low": "CI low",
            "ci_high": "CI high",
            "p_value": "P",
        }
    )
    cal = results.calibration.reset_index()
    cal["model"] = cal["model"].map(lambda m: model_labels.get(m, m))
    cal["cohort"] = cal["cohort"].map(lambda c: cohort_labels.get(c, c))
    cal = cal.rename(
        columns={
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
    )
    table = perf.reset_index()
    table["model"] = table["model"].map(lambda m: model_labels.get(m, m))
    table["cohort"] = table["cohort"].map(lambda c: cohort_labels.get(c, c))
    table = table[
        [
            "model",
            "cohort",
            "n",
            "n_positive",
            "AUC (95% CI)",
            "threshold",
            "accuracy",
            "sensitivity",
            "specificity",
        ]
    ].rename(
        columns={
            "model": "Model",
            "cohort": "Cohort",
            "n_positive": "CLNM",
            "threshold": "Threshold",
            "accuracy": "Accuracy",
            "sensitivity": "Sensitivity",
            "specificity": "Specificity",
        }
    )
    config = pd.DataFrame(
        {
            "key": list(results.config.to_dict()),
            "value": [str(v) for v in results.config.to_dict().values()],
        }
    )
    table1 = results.table1.copy()
    return {
        "cohorts": _html_table(cohorts),
        "table1": _html_table(table1),
        "auc": _html_table(auc),
        "clinical_classifiers": clf("clinical"),
        "combined_classifiers": clf("combined"),
        "selected": _html_table(sel, digits=4) if len(sel) else "<p>(none reported)</p>",
        "delong": _html_table(delong.drop(columns=["z"], errors="ignore")),
        "calibration": _html_table(cal),
        "performance": _html_table(table),
        "config": _html_table(config),
    }


def _figures(results: StudyResults) -> dict[str, str]:
    by_section: dict[str, list[str]] = {}
    for record in results.figures.values():
        css = {"roc": "third", "calibration": "third", "decision": "third", "combined": "half"}.get(
            record.section, ""
        )
        by_section.setdefault(record.section, []).append(_figure(record, css))
    return {key: "\n".join(items) for key, items in by_section.items()} | {
        key: ""
        for key in ("dl", "roc", "combined", "calibration", "decision")
        if key not in by_section
    }


# --------------------------------------------------------------------------- public
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
    import jinja2

    from thyronet import __version__

    cfg = results.config
    total = results.timings.get("total")
    runtime = (
        "not recorded"
        if total is None
        else (f"{total:.0f} s" if total < 120 else f"{total / 60:.1f} min")
    )
    from thyronet.backbones import resolve_pretrained

    weights = resolve_pretrained(cfg.backbone, cfg.pretrained)
    pretrained = {True: "ImageNet weights", False: "trained from scratch"}.get(
        weights, f"weights: {weights}"
    )
    out = results.out_dir
    files = (
        "metrics.json, study.json, config.toml, predictions.csv, tables/*.csv, "
        "figures/*.png and *.svg, models/<name>/ (model.json, model.skops, "
        "weights/*.safetensors), report.html"
    )
    text = {
        "patients": _text_patients(results),
        "dual_channel": _text_dual_channel(results),
        "clinical": _classifier_sentence(results, "clinical") or "",
        "combined_features": _text_combined_features(results),
        "combined": _classifier_sentence(results, "combined") or "",
        "delong": _text_delong(results),
        "calibration": _text_calibration(results),
        "thresholds": _text_thresholds(results),
        "files": (
            f"Written to {out}: {files}."
            if out is not None
            else "This study was run without an output folder."
        ),
    }
    statuses = results.model_status
    notes = list(results.notes)
    loaded = [m for m, s in statuses.items() if s == "loaded"]
    if loaded:
        notes.append(f"Resumed: {', '.join(loaded)} loaded from the output folder, not refitted.")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(_TEMPLATE)
    return template.render(
        title=title or "thyronet study: dual-channel deep learning for occult CLNM in PTMC",
        version=__version__,
        cfg=cfg,
        pretrained=pretrained,
        runtime=runtime,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        notes=notes,
        text=text,
        tables=_tables(results),
        figs=_figures(results),
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

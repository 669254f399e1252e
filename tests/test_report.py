"""The HTML report: numbers, narrative, embedded figures, and a real browser loading them."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from thyronet.datasets import make_ptmc_cohort
from thyronet.pipelines import make_dl_model
from thyronet.report import render_report, write_report
from thyronet.study import MODEL_NAMES, StudyConfig, run_study
from thyronet.study._figures import _gradcam_figures


def _tabular(columns, classifier):
    """A plain scikit-learn model on some clinical columns of the cohort frame."""
    numeric = [c for c in columns if c in ("age", "size", "aspect_ratio")]
    categorical = [c for c in columns if c not in numeric]
    parts = [("passthrough", numeric)]
    if categorical:
        parts.append((OneHotEncoder(handle_unknown="ignore"), categorical))
    return make_pipeline(make_column_transformer(*parts), classifier)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cohort = make_ptmc_cohort(n_patients=160, image_size=16, random_state=1)
    models = {
        "dl_l": _tabular(["size"], LogisticRegression()),
        "dl_c": _tabular(["aspect_ratio"], LogisticRegression()),
        "dl_f": _tabular(["size", "aspect_ratio"], LogisticRegression()),
        "combined": _tabular(["size", "aspect_ratio", "age", "sex", "ete"], GaussianNB()),
        "clinical": _tabular(["age", "sex", "ete", "margin"], LogisticRegression()),
    }
    config = StudyConfig.demo(verbose=0, gradcam_patients=0, shap_max_samples=0)
    return run_study(cohort, config, tmp_path_factory.mktemp("report"), models=models)


def test_report_reads_like_the_results_section(results):
    html = render_report(results)
    for heading in (
        "Patients",
        "Performance of the dual-channel model",
        "Performance of the clinical model",
        "Combined model",
        "Calibration and clinical utility",
    ):
        assert heading in html
    n = len(results.predictions)
    assert f"The study included {n} patients" in html
    row = results.performance.loc[("dl_f", "validation")]
    auc = f"{row['auc']:.3f} (95% CI: {row['auc_low']:.3f}–{row['auc_high']:.3f})"
    # the protocol tuned on the validation cohort: its numbers say so
    assert f"In the validation (tuning cohort), the AUC of Model 3: DL_F was {auc}" in html
    assert "<th>Validation (tuning cohort)</th>" in html
    # Table 1 in the tableone style: readable labels, each variable once, levels indented
    assert "<td>Extrathyroidal extension, n (%)</td>" in html
    assert "<td>\u00a0\u00a0\u00a0\u00a0Hyper-/isoechoic</td>" in html
    assert "<th>P</th><th>Test</th>" in html
    p = results.delong_p("combined", "clinical", "test")
    assert ("P &lt; 0.001" if p < 0.001 else f"P = {p:.3f}") in html
    for model in MODEL_NAMES:
        assert results.performance.loc[(model, "test"), "AUC (95% CI)"] in html
    # calibration is read from slope and calibration-in-the-large, not HL P alone
    cal = results.statistics["calibration"].loc[("dl_f", "test")]
    slope = f"{cal['slope']:.2f} ({cal['slope_low']:.2f} to {cal['slope_high']:.2f})"
    assert f"Model 3: DL_F slope {slope}, calibration-in-the-large" in html
    assert "Hosmer-Lemeshow tests" in html and "Optimism-corrected" in html
    # Table 1 rows and the cohort sizes
    assert "Aspect ratio, median (Q1–Q3)" in html and "Kruskal-Wallis" in html
    sizes = results.predictions.cohort.value_counts()
    assert "<tr><td>n</td>" + "".join(f"<td>{sizes[c]}</td>" for c in results.cohorts) in html


def test_report_embeds_every_figure_and_needs_no_other_file(results, tmp_path):
    path = write_report(results, tmp_path / "r" / "report.html")
    html = path.read_text(encoding="utf-8")
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html)
    # ROC, calibration, decision x 3, participant flow, the clinical model's nomogram
    assert len(images) == len(results.figures) == 3 * 3 + 2
    assert {"participant_flow", "nomogram_clinical"} <= set(results.figures)
    titles = {title for title, _ in images}
    assert titles == {r.title for r in results.figures.values()}
    for _, data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing fetched from elsewhere


def test_custom_models_are_explained_in_notes(results):
    # the custom combined model has no ClassifierSelector and no LASSO: its features are
    # those reaching its classifier, and the report says the classifier was not chosen
    assert results.classifier_scores.empty
    combined = results.models["combined"]
    assert results.selected_features["feature"].tolist() == list(
        combined[:-1].get_feature_names_out()
    )
    html = render_report(results)
    assert "Model 4: Combined does not choose its classifier on the validation cohort" in html
    assert "passthrough__size" in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium not installed")
def test_every_figure_loads_in_headless_chromium(results, tmp_path):
    path = write_report(results, tmp_path / "report.html")
    proc = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            path.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    body = re.search(r"<body[^>]*>", proc.stdout)
    assert body, proc.stderr[-2000:]
    total = re.search(r'data-images="(\d+)"', body.group(0))
    loaded = re.search(r'data-images-loaded="(\d+)"', body.group(0))
    assert total and loaded, body.group(0)
    assert int(total.group(1)) == len(results.figures)
    assert int(loaded.group(1)) == len(results.figures)


def test_a_model_gradcam_cannot_explain_gets_a_note_and_other_errors_propagate(results):
    cohort = make_ptmc_cohort(n_patients=160, image_size=16, random_state=1)
    # the custom DL_F is a plain scikit-learn model: no CNN, so no Grad-CAM, and a note
    copy = dataclasses.replace(results, notes=[], figures={})
    assert _gradcam_figures(copy, cohort) == {}
    assert copy.notes == [
        "No Grad-CAM gallery of Model 3: DL_F: Grad-CAM needs a fitted SkorchCNN or a model "
        "holding one (a make_dl_model() or make_combined_model() pipeline); got Pipeline."
    ]
    # any other failure is not turned into a note: here, a DL_F whose CNN was never fitted
    unfitted = make_dl_model(image_size=16, backbone="test_resnet")
    broken = dataclasses.replace(results, notes=[], models={**results.models, "dl_f": unfitted})
    with pytest.raises(NotFittedError):
        _gradcam_figures(broken, cohort)
    assert broken.notes == []


def test_statistics_reach_metrics_json_and_tables(results):
    out = results.out_dir
    metrics = json.loads((out / "metrics.json").read_text())
    cal = metrics["dl_f"]["test"]["calibration"]
    assert set(cal) >= {"slope", "slope_ci", "intercept", "intercept_ci", "ici", "e90", "brier"}
    assert cal["slope_ci"][0] <= cal["slope"] <= cal["slope_ci"][1]
    for model in ("clinical", "combined"):
        opt = metrics[model]["train"]["optimism_corrected"]
        assert opt["n_bootstrap"] == results.config.optimism_bootstrap
        auc = opt["auc"]
        assert auc["corrected"] == pytest.approx(auc["apparent"] - auc["optimism"])
    rec = pd.read_csv(out / "tables" / "reclassification.csv")
    assert list(rec["cohort"]) == results.cohorts
    tripod = pd.read_csv(out / "tables" / "tripod_ai.csv", dtype=str)
    for item in (
        "10",
        "11",
        "12a",
        "12b",
        "12c",
        "12e",
        "12f",
        "12g",
        "13",
        "15",
        "16",
        "18f",
        "20a",
        "20b",
        "20c",
        "21",
        "22",
        "23a",
        "23b",
        "24",
    ):
        assert item in set(tripod["item"]), item
    assert (tripod["status"] == "to be completed by the authors").any()
    # a model whose AUC CI contains 0.5 is flagged in the text and the AUC table
    html = render_report(results)
    for model, cohort in results.statistics["chance"]:
        assert "Not distinguishable from chance" in html
        assert results.performance.loc[(model, cohort), "AUC (95% CI)"] + " †" in html


def test_each_saved_model_has_a_model_card(results):
    for name in MODEL_NAMES:
        card = (results.out_dir / "models" / name / "MODEL_CARD.md").read_text()
        assert "## Intended use" in card and "## Decision threshold" in card
        assert results.performance.loc[(name, "test"), "AUC (95% CI)"] in card
        assert f"{results.thresholds[name]:.4f}" in card

"""The study's validation protocol on cheap tabular models: thresholds, what reaches X,
threshold metrics with CIs, per-centre AUCs (no CNN is trained here)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from thyronet.cli import main
from thyronet.datasets import make_ptmc_cohort, save_cohort
from thyronet.study import MODEL_NAMES, StudyConfig, StudyError, run_study


def numeric_model():
    """Every numeric column it is given: a leak in X would show at once."""
    return make_pipeline(
        make_column_transformer(
            ("passthrough", make_column_selector(dtype_include=np.number)),
        ),
        LogisticRegression(max_iter=2000),
    )


def cheap_models():
    models = {name: numeric_model() for name in MODEL_NAMES}
    models["clinical"] = make_pipeline(  # saved and loaded by `thyronet predict`
        make_column_transformer(("passthrough", ["age", "size", "aspect_ratio"])),
        LogisticRegression(max_iter=2000),
    )
    return models


def config(**overrides):
    settings = dict(verbose=0, shap_max_samples=0, gradcam_patients=0, device="cpu")
    return StudyConfig.demo(**{**settings, **overrides})


@pytest.fixture(scope="module")
def cohort():
    return make_ptmc_cohort(n_patients=150, image_size=16, random_state=0)


@pytest.fixture(scope="module")
def cheap_study(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("protocol")
    return run_study(cohort, config(), out, models=cheap_models()), out


def test_thresholds_default_to_youden_on_the_tuning_cohort(cheap_study, cohort):
    from thyronet.metrics import youden_threshold

    results, out = cheap_study
    val = (cohort["cohort"] == "validation").to_numpy()
    y_val = cohort["clnm"].to_numpy()[val]
    study = json.loads((out / "study.json").read_text())
    for name in MODEL_NAMES:
        expected = youden_threshold(y_val, results.predictions[name].to_numpy()[val]).threshold
        assert results.thresholds[name] == pytest.approx(expected)
        assert study["threshold_source"][name].startswith("Youden's J on the validation")
        info = json.loads((out / "models" / name / "model.json").read_text())
        assert info["metadata"]["threshold_source"] == study["threshold_source"][name]


def test_threshold_rules_from_the_config(cohort):
    train = (cohort["cohort"] == "train").to_numpy()
    results = run_study(cohort, config(threshold="youden:train"), models=cheap_models())
    from thyronet.metrics import youden_threshold

    p = results.predictions["clinical"].to_numpy()
    y = cohort["clnm"].to_numpy()
    assert results.thresholds["clinical"] == youden_threshold(y[train], p[train]).threshold
    assert "training cohort" in results.threshold_sources["clinical"]
    results = run_study(cohort, config(threshold="sensitivity:0.9"), models=cheap_models())
    val = results.performance.loc[("clinical", "validation")]
    assert val["sensitivity"] >= 0.9
    results = run_study(cohort, config(threshold=0.3), models=cheap_models())
    assert set(results.thresholds.values()) == {0.3}
    assert StudyConfig.paper_protocol().threshold == "youden:train"
    with pytest.raises(StudyError, match="'threshold' must be a threshold rule"):
        StudyConfig(threshold="median")


def test_an_unmeetable_threshold_rule_is_a_clear_error(cohort):
    tied = cohort.copy()
    with pytest.raises(StudyError, match="cannot be met by a useful cut-off"):
        run_study(
            tied,
            config(threshold="sensitivity:1.0"),
            models={
                name: make_pipeline(  # a constant model: every score ties
                    make_column_transformer(("passthrough", ["age"])),
                    _Constant(),
                )
                for name in MODEL_NAMES
            },
        )


class _Constant(LogisticRegression):
    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)


def test_predict_prints_the_threshold_source(cheap_study, cohort, tmp_path, capsys):
    _, out = cheap_study
    new = cohort[cohort["cohort"] == "test"].drop(columns=["clnm", "cohort"])
    manifest = tmp_path / "new.csv"
    save_cohort(new, manifest)
    code = main(
        [
            "predict",
            "--model",
            str(out / "models" / "clinical"),
            "--manifest",
            str(manifest),
            "--out",
            str(tmp_path / "pred.csv"),
        ]
    )
    assert code == 0
    assert "threshold source: Youden's J on the validation (tuning)" in capsys.readouterr().out


def test_only_feature_columns_reach_the_models(cheap_study, cohort):
    results, out = cheap_study
    assert "clnm" not in results.feature_columns
    assert not {"cohort", "patient_id", "oracle_risk", "center"} & set(results.feature_columns)
    assert not [c for c in results.feature_columns if c.startswith("truth_")]
    assert {"age", "size", "longitudinal", "transverse_roi"} <= set(results.feature_columns)
    assert json.loads((out / "study.json").read_text())["feature_columns"] == (
        results.feature_columns
    )
    leaky = cohort.copy()
    leaky["label_copy"] = leaky["clnm"].astype(float)  # a planted copy of the label
    again = run_study(leaky, config(), models=cheap_models())
    for name in MODEL_NAMES:
        np.testing.assert_array_equal(again.predictions[name], results.predictions[name])
    assert again.auc("dl_l", "train") < 0.99
    with pytest.raises(StudyError, match="may never reach the models"):
        run_study(leaky, config(extra_columns=["oracle_risk"]), models=cheap_models())
    with pytest.raises(StudyError, match="not columns of the cohort"):
        run_study(leaky, config(extra_columns=["view_1"]), models=cheap_models())
    # a declared extra column does reach them
    leaky["hint"] = leaky["clnm"] + np.random.default_rng(0).normal(0, 1.0, len(leaky))
    seen = run_study(leaky, config(extra_columns=["hint"]), models=cheap_models())
    assert "hint" in seen.feature_columns
    assert seen.auc("dl_l", "test") > results.auc("dl_l", "test")


def test_full_classification_metrics_with_wilson_intervals(cheap_study):
    from thyronet.metrics import binary_summary

    results, out = cheap_study
    metrics = json.loads((out / "metrics.json").read_text())
    predictions = results.predictions
    names = ("sensitivity", "specificity", "ppv", "npv", "accuracy", "f1")
    for model in MODEL_NAMES:
        assert list(metrics[model]) == ["train", "validation", "test"]
        for cohort, entry in metrics[model].items():
            part = predictions[predictions["cohort"] == cohort]
            summary = binary_summary(part["clnm"], part[model], results.thresholds[model])
            for name in names:
                low, high = entry[f"{name}_ci"]
                expected = getattr(summary, name)
                assert (entry[name], low, high) == pytest.approx(tuple(expected)[:3])
            assert entry["confusion"] == {
                "tp": summary.tp,
                "fp": summary.fp,
                "tn": summary.tn,
                "fn": summary.fn,
            }
    performance = (out / "tables" / "performance.csv").read_text().splitlines()[0].split(",")
    assert {"ppv", "npv", "f1", "ppv_low", "f1_high", "tp", "fn"} <= set(performance)
    report = (out / "report.html").read_text()
    assert "PPV (95% CI)" in report and "NPV (95% CI)" in report
    kinds = results.delong.groupby("cohort")["kind"].unique()
    assert list(kinds["train"]) == ["apparent"] and list(kinds["test"]) == ["held-out"]
    assert "training set (apparent: the models were fitted on it)" in report


def test_per_center_auc_when_the_cohort_has_several_centres(cohort, tmp_path):
    import pandas as pd

    mixed = cohort.copy()
    mixed["center"] = np.where(np.arange(len(mixed)) % 3 == 0, "north", "south")
    results = run_study(mixed, config(), tmp_path, models=cheap_models())
    table = pd.read_csv(tmp_path / "tables" / "per_center.csv")
    assert set(table["center"]) == {"north", "south"}
    assert len(table) == len(MODEL_NAMES) * 3 * 2
    row = table[(table["model"] == "clinical") & (table["cohort"] == "test")]
    for _, r in row.iterrows():
        mask = (mixed["cohort"] == "test") & (mixed["center"] == r["center"])
        from thyronet.metrics import roc_auc_ci

        if mixed.loc[mask, "clnm"].nunique() < 2:  # one class in this centre: no AUC
            assert pd.isna(r["auc"])
            continue

        expected = roc_auc_ci(mixed.loc[mask, "clnm"], results.predictions.loc[mask, "clinical"])
        assert r["auc"] == pytest.approx(expected.auc)
    assert "AUC per centre" in (tmp_path / "report.html").read_text()
    single = mixed.assign(center="north")
    assert run_study(single, config(), models=cheap_models()).per_center.empty

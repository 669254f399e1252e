"""The study: configuration, cohort checks, a tiny end-to-end run, outputs, resume."""

from __future__ import annotations

import base64
import functools
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from thyronet import ClassifierSelector, SkorchCNN
from thyronet.datasets import make_ptmc_cohort
from thyronet.model_io import ModelFileError, load_model
from thyronet.study import (
    COHORT_LABELS,
    MODEL_NAMES,
    StudyConfig,
    StudyError,
    evaluate_predictions,
    run_study,
)
from thyronet.study._labels import classifier_label

COHORTS = ["train", "validation", "test"]


def tiny_config(**overrides) -> StudyConfig:
    settings = dict(
        image_size=64,
        max_epochs=1,
        batch_size=16,
        pca_components=8,
        lasso_cv=3,
        gradcam_patients=2,
        shap_max_samples=40,
        verbose=0,
        device="cpu",
        feature_cv=2,
    )
    return StudyConfig.demo(**{**settings, **overrides})


@pytest.fixture(scope="module")
def cohort():
    return make_ptmc_cohort(n_patients=90, image_size=64, random_state=0)


class FitCounter:
    """Counts real calls of ``SkorchCNN.fit`` and ``ClassifierSelector.fit``."""

    def __init__(self, monkeypatch):
        self.counts = {"cnn": 0, "classifier": 0}
        for key, cls in (("cnn", SkorchCNN), ("classifier", ClassifierSelector)):
            original = cls.fit

            @functools.wraps(original)  # keeps the signature (X_val/y_val are looked up)
            def counted(self_, *args, _original=original, _key=key, **kwargs):
                self.counts[_key] += 1
                return _original(self_, *args, **kwargs)

            monkeypatch.setattr(cls, "fit", counted)


@pytest.fixture(scope="module")
def study(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    with pytest.MonkeyPatch.context() as mp:
        counter = FitCounter(mp)
        results = run_study(cohort, tiny_config(), out)
    return results, out, counter.counts


# --------------------------------------------------------------------------- config
def test_presets_and_toml(tmp_path):
    paper, demo = StudyConfig.paper(), StudyConfig.demo()
    assert (paper.backbone, paper.image_size, paper.pretrained) == ("resnet101", 224, "auto")
    assert (demo.backbone, demo.image_size, demo.pretrained) == ("test_resnet", 96, False)
    path = tmp_path / "study.toml"
    path.write_text('backbone = "resnet18"\nfusion = "stack3"\nclassifiers = ["lightgbm"]\n')
    cfg = StudyConfig.from_toml(path)
    assert (cfg.backbone, cfg.fusion, cfg.classifiers, cfg.image_size) == (
        "resnet18",
        "stack3",
        ["lightgbm"],
        224,
    )
    on_demo = StudyConfig.from_toml(path, base=demo)
    assert on_demo.image_size == 96 and on_demo.backbone == "resnet18"
    (tmp_path / "again.toml").write_text(demo.to_toml())
    assert StudyConfig.from_toml(tmp_path / "again.toml") == demo


def test_unknown_config_key_lists_the_valid_ones(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[study]\nepochs = 3\n")
    with pytest.raises(
        StudyError,
        match=r"unknown config key\(s\) \['epochs'\]; valid keys: "
        r"backbone, .*max_epochs",
    ):
        StudyConfig.from_toml(path)
    # each key is checked with the constraint of the estimator it is passed to
    with pytest.raises(
        StudyError,
        match=r"config key 'max_epochs' \(passed to SkorchCNN\(max_epochs=\.\.\.\)\) must be "
        r"an int in the range \[1, inf\)\. Got 0 instead",
    ):
        StudyConfig(max_epochs=0)
    with pytest.raises(StudyError, match=r"'pvalue_alpha' \(passed to PValueSelector\(alpha="):
        StudyConfig(pvalue_alpha=1.5)
    with pytest.raises(StudyError, match="'threshold' must be"):
        StudyConfig(threshold="median")
    with pytest.raises(StudyError, match=r"'class_weight' \(passed to SkorchCNN"):
        StudyConfig(class_weight="inverse")
    path.write_text("backbone = ")
    with pytest.raises(StudyError, match="not valid TOML"):
        StudyConfig.from_toml(path)


def test_protocol_settings_default_to_honest_and_keep_the_papers():
    paper, demo = StudyConfig.paper(), StudyConfig.demo()
    assert (paper.early_stopping_on, paper.early_stopping_fraction, paper.feature_cv) == (
        "train_split",
        0.2,
        5,
    )
    assert demo.feature_cv == 3
    protocol = StudyConfig.paper_protocol()
    assert (protocol.early_stopping_on, protocol.feature_cv) == ("validation", None)
    assert paper.model_params()["validation_fraction"] == 0.2
    with pytest.raises(StudyError, match="'feature_cv' must be"):
        StudyConfig(feature_cv=1)
    with pytest.raises(StudyError, match="'early_stopping_fraction' must be"):
        StudyConfig(early_stopping_fraction=1.0)


def test_training_cohort_too_small_for_its_splits_is_refused(cohort):
    with pytest.raises(StudyError, match="feature_cv = 500 cross-fitting folds need"):
        run_study(cohort, tiny_config(feature_cv=500))
    with pytest.raises(StudyError, match=r'early_stopping_on = "train_split" holds out 0\.01'):
        run_study(cohort, tiny_config(early_stopping_fraction=0.01))


# --------------------------------------------------------------------------- cohort checks
def test_cohort_without_validation_or_with_one_class_is_refused(cohort):
    no_val = cohort[cohort["cohort"] != "validation"]
    with pytest.raises(StudyError, match="no 'validation' patients"):
        run_study(no_val, tiny_config())
    one_class = cohort.copy()
    one_class.loc[one_class["cohort"] == "test", "clnm"] = 0
    with pytest.raises(StudyError, match="cohort 'test' has only one class"):
        run_study(one_class, tiny_config())
    with pytest.raises(StudyError, match="no 'cohort' column"):
        run_study(cohort.drop(columns="cohort"), tiny_config())
    with pytest.raises(StudyError, match=r"unknown key\(s\) \['dl_x'\]"):
        run_study(cohort, tiny_config(), models={"dl_x": None})


def test_evaluate_predictions_matches_direct_computation():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 240)
    frame = pd.DataFrame(
        {
            "cohort": np.repeat(COHORTS, 80),
            "clnm": y,
            "dl_f": np.clip(0.35 + 0.3 * y + rng.normal(0, 0.2, 240), 0.01, 0.99),
            "clinical": rng.uniform(0.05, 0.95, 240),
        }
    )
    out = evaluate_predictions(frame, threshold=0.5)
    test = frame[frame.cohort == "test"]
    assert out["performance"].loc[("dl_f", "test"), "auc"] == pytest.approx(
        roc_auc_score(test.clnm, test.dl_f)
    )
    assert set(out["delong"]["cohort"]) == set(COHORTS)
    assert out["thresholds"] == {"dl_f": 0.5, "clinical": 0.5}
    # a model with two distinct probabilities has no Hosmer-Lemeshow test: NaN and a note
    frame["clinical"] = np.where(rng.uniform(size=240) < 0.5, 0.6, 0.4)
    cal = evaluate_predictions(frame)["calibration"]
    assert np.isnan(cal.loc[("clinical", "train"), "hl_p_value"])
    assert "degrees of freedom" in cal.loc[("clinical", "train"), "note"]


# --------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_study_fits_each_model_once_and_evaluates_every_cohort(study, cohort):
    results, _, counts = study
    # three CNNs (DL_L, DL_C, DL_F); the combined model reuses DL_F's network for
    # prediction and fine-tunes feature_cv = 2 fold CNNs for its cross-fitted features
    assert counts == {"cnn": 3 + 2, "classifier": 2}
    assert set(results.models) == set(MODEL_NAMES)
    assert set(results.model_status.values()) == {"fitted"}
    assert results.cohorts == COHORTS
    pred = results.predictions
    assert len(pred) == len(cohort) and set(MODEL_NAMES) <= set(pred.columns)
    for name in MODEL_NAMES:
        assert np.all((pred[name] >= 0) & (pred[name] <= 1))
        for c in COHORTS:
            part = pred[pred.cohort == c]
            assert results.auc(name, c) == pytest.approx(roc_auc_score(part.clnm, part[name]))


@pytest.mark.slow
def test_classifiers_are_chosen_on_the_validation_cohort(study):
    results, _, _ = study
    scores = results.classifier_scores
    assert set(scores["model"]) == {"combined", "clinical"}
    assert (scores["selected_by"] == "validation").all()
    assert set(scores["classifier"]) == {"logistic_regression", "lightgbm", "naive_bayes"}
    pred = results.predictions
    val = pred[pred.cohort == "validation"]
    for model in ("combined", "clinical"):
        rows = scores[scores["model"] == model]
        chosen = rows[rows["chosen"]]
        assert len(chosen) == 1 and chosen["score"].iloc[0] == rows["score"].max()
        # the chosen candidate's selection score is the model's own validation AUC
        assert chosen["score"].iloc[0] == pytest.approx(roc_auc_score(val.clnm, val[model]))
        assert results.chosen_classifiers[model] == chosen["classifier"].iloc[0]


@pytest.mark.slow
def test_selected_features_are_those_reaching_the_classifier(study):
    results, _, _ = study
    combined = results.models["combined"]
    reaching = list(map(str, combined[:-1].get_feature_names_out()))
    assert results.selected_features["feature"].tolist() == sorted(
        reaching,
        key=lambda f: -abs(results.selected_features.set_index("feature").loc[f, "lasso_coef"]),
    )
    assert set(results.selected_features["source"]) <= {"deep", "clinical"}
    counts = results.feature_counts
    assert counts["deep_features"] == 96 and counts["pca_components"] == 8
    assert counts["after_lasso"] == len(reaching) <= counts["after_pvalue"]


@pytest.mark.slow
def test_metrics_json_layout(study):
    results, out, _ = study
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == list(MODEL_NAMES)
    for name in MODEL_NAMES:
        assert list(metrics[name]) == COHORTS
        entry = metrics[name]["test"]
        assert entry["auc"] == pytest.approx(results.auc(name, "test"))
        low, high = entry["auc_ci"]
        assert low <= entry["auc"] <= high
        assert {
            "accuracy",
            "sensitivity",
            "specificity",
            "threshold",
            "hosmer_lemeshow",
            "brier",
            "n",
            "n_positive",
        } <= set(entry)
        assert entry["threshold"] == pytest.approx(results.thresholds[name])
    study_json = json.loads((out / "study.json").read_text())
    assert study_json["chosen_classifiers"] == results.chosen_classifiers
    assert study_json["cohort_roles"]["test"] == "evaluation only"
    assert study_json["cohort_roles"]["validation"].startswith("tuning")
    assert COHORT_LABELS["validation"] == "Validation (tuning cohort)"
    assert study_json["feature_cv"] == 2 and study_json["early_stopping_on"] == "train_split"


def test_apparent_predictions_of_the_cross_fitted_model_use_its_fit_features(study, cohort):
    # Like TargetEncoder: training patients are scored by the classifier on the
    # out-of-fold deep features it was fitted on, not through the CNN that saw them.
    results, out, _ = study
    assert results.cross_fitted == ["combined"]
    train = (cohort["cohort"] == "train").to_numpy()
    combined = results.models["combined"]
    inputs = results.training_inputs["combined"]
    fitted_on = combined.steps[-1][1].predict_proba(inputs.final_step)[:, 1]
    np.testing.assert_allclose(results.predictions.loc[train, "combined"], fitted_on)
    through_cnn = combined[:1].transform(cohort[results.feature_columns][train])
    assert not np.allclose(inputs.first_step, through_cnn)  # the deep features differ
    others = combined.predict_proba(cohort[results.feature_columns][~train])[:, 1]
    np.testing.assert_allclose(results.predictions.loc[~train, "combined"], others)
    study_json = json.loads((out / "study.json").read_text())
    assert study_json["apparent_from_out_of_fold_features"] == ["combined"]
    saved = json.loads((out / "models" / "combined" / "model.json").read_text())
    np.testing.assert_allclose(saved["metadata"]["training_probabilities"], fitted_on)
    method = results.statistics["optimism_method"]["combined"]
    assert "out-of-fold (cross-fitted) features" in method
    assert any("out-of-fold deep features (feature_cv = 2)" in n for n in results.notes)


def test_a_cross_fitted_model_fitted_outside_the_route_is_flagged(cohort):
    # A final step without X_val is fitted by Pipeline.fit, so the out-of-fold features
    # its classifier saw are not kept: the report must say its apparent numbers are
    # in-sample, not pass them off as cross-fitted.
    from sklearn.linear_model import LogisticRegression

    from thyronet.pipelines import make_combined_model

    def combined(dl_f):
        model = make_combined_model(dl_f, n_components=8, cv=2)
        return model.set_params(classify=LogisticRegression(max_iter=1000))

    results = run_study(
        cohort, tiny_config(gradcam_patients=0, shap_max_samples=0), models={"combined": combined}
    )
    assert results.cross_fitted == []
    assert any("were not available" in note for note in results.notes)


@pytest.mark.slow
def test_tables_figures_and_models_are_written(study, cohort):
    results, out, _ = study
    auc = pd.read_csv(out / "tables" / "auc.csv", index_col=0)
    assert list(auc.index) == list(MODEL_NAMES) and list(auc.columns) == COHORTS
    delong = pd.read_csv(out / "tables" / "delong.csv")
    assert len(delong) == 3 * 10  # 10 pairs of 5 models in each cohort
    hl = pd.read_csv(out / "tables" / "hosmer_lemeshow.csv")
    assert len(hl) == 15 and {"hl_statistic", "hl_p_value"} <= set(hl.columns)
    table1 = pd.read_csv(out / "tables" / "table1_long.csv")
    assert "age" in set(table1["variable"])
    shown = pd.read_csv(out / "tables" / "table1.csv", keep_default_na=False)
    assert list(shown.columns) == [
        "Characteristic",
        *(COHORT_LABELS[c] for c in COHORTS),
        "P",
        "Test",
    ]
    assert "Extrathyroidal extension, n (%)" in set(shown["Characteristic"])
    assert "    Hyper-/isoechoic" in set(shown["Characteristic"])
    selected = pd.read_csv(out / "tables" / "selected_features.csv")
    assert selected["feature"].tolist() == results.selected_features["feature"].tolist()
    for name in (
        "roc_train",
        "roc_validation",
        "roc_test",
        "calibration_test",
        "decision_test",
        "lasso_path",
        "lasso_cv",
    ):
        png = out / "figures" / f"{name}.png"
        svg = out / "figures" / f"{name}.svg"
        assert png.read_bytes()[:4] == b"\x89PNG", name
        assert "<svg" in svg.read_text(), name
    for name in MODEL_NAMES:
        model, info = load_model(out / "models" / name)
        assert info["name"] == name
        assert info["threshold"] == pytest.approx(results.thresholds[name])
        loaded = model.predict_proba(cohort)[:, 1]
        np.testing.assert_allclose(loaded, results.predictions[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_report_holds_the_numbers_and_every_figure(study):
    results, out, _ = study
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(results.figures) >= 11
    for data in images:
        assert base64.b64decode(data)[:4] == b"\x89PNG"
    for name in MODEL_NAMES:
        for cohort in COHORTS:
            assert results.performance.loc[(name, cohort), "AUC (95% CI)"] in html
    row = results.performance.loc[("dl_f", "test")]
    assert f"{row['auc']:.3f} (95% CI: {row['auc_low']:.3f}–{row['auc_high']:.3f})" in html
    p = results.delong_p("dl_f", "dl_l", "test")
    assert ("P &lt; 0.001" if p < 0.001 else f"P = {p:.3f}") in html
    chosen = results.chosen_classifiers["combined"]
    assert f"{classifier_label(chosen)} scored highest" in html  # display name, not registry
    for feature in results.selected_features["feature"]:
        assert feature in html
    assert "http://" not in html.replace("http://www.w3.org", "")  # no external resources


@pytest.mark.slow
def test_explanations_come_from_thyronet_explain(study):
    results, _, _ = study
    assert {"gradcam", "shap_summary", "shap_bar", "shap_waterfall"} <= set(results.figures)
    assert not any("Grad-CAM" in n or "SHAP" in n for n in results.notes)


# --------------------------------------------------------------------------- resume
@pytest.mark.slow
def test_resume_loads_finished_models_without_refitting(study, cohort, monkeypatch):
    results, out, _ = study
    counter = FitCounter(monkeypatch)
    again = run_study(cohort, tiny_config(), out)
    assert counter.counts == {"cnn": 0, "classifier": 0}
    assert set(again.model_status.values()) == {"loaded"}
    pd.testing.assert_frame_equal(again.predictions, results.predictions)


@pytest.mark.slow
def test_resume_refits_a_damaged_model_and_refuses_another_config(
    study, cohort, tmp_path, monkeypatch
):
    import shutil

    shutil.copytree(study[1], tmp_path, dirs_exist_ok=True)
    # gradcam/SHAP settings do not change the models: resuming with other ones is fine
    config = tiny_config(gradcam_patients=0, shap_max_samples=0)
    for name in ("clinical", "dl_f"):
        with open(tmp_path / "models" / name / "model.skops", "ab") as handle:
            handle.write(b"tampered")
        with pytest.raises(ModelFileError, match="does not match the SHA-256"):
            load_model(tmp_path / "models" / name)
    counter = FitCounter(monkeypatch)
    again = run_study(cohort, config, tmp_path)
    # DL_F and the clinical model are refitted, and the combined model because it holds
    # DL_F's network (with its feature_cv = 2 fold CNNs); DL_L and DL_C are loaded
    assert counter.counts == {"cnn": 1 + 2, "classifier": 2}
    assert again.model_status == {
        "dl_l": "loaded",
        "dl_c": "loaded",
        "dl_f": "fitted",
        "combined": "fitted",
        "clinical": "fitted",
    }
    load_model(tmp_path / "models" / "clinical")  # valid again

    changed = tiny_config(gradcam_patients=0, shap_max_samples=0, pca_components=6)
    with pytest.raises(
        StudyError,
        match=r"another configuration or cohort \(pca_components: "
        r"8 -> 6\)",
    ):
        run_study(cohort, changed, tmp_path)
    refit = run_study(cohort, changed, tmp_path, resume=False)
    assert set(refit.model_status.values()) == {"fitted"}
    assert refit.feature_counts["pca_components"] == 6


# -- checks before training (issue 15) ----------------------------------------------------


def _no_training(monkeypatch):
    import thyronet.study._run as run

    def fail(*args, **kwargs):
        raise AssertionError("a model was fitted before the checks")

    monkeypatch.setattr(run, "_fit_model", fail)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("fusion", "nope", "config key 'fusion': .*nope"),
        ("backbone", "nope", "config key 'backbone': .*nope"),
        ("classifiers", ["logistic_regression", "nope"], "config key 'classifiers'.*nope"),
    ],
)
def test_unknown_names_fail_before_training(cohort, monkeypatch, key, value, match):
    _no_training(monkeypatch)
    with pytest.raises(StudyError, match=match):
        run_study(cohort, StudyConfig.demo(verbose=0, **{key: value}))


def test_unusable_output_folder_fails_before_training(cohort, tmp_path, monkeypatch):
    _no_training(monkeypatch)
    (tmp_path / "file").write_text("x")
    with pytest.raises(StudyError, match="is a file; give a folder"):
        run_study(cohort, StudyConfig.demo(verbose=0), tmp_path / "file")
    with pytest.raises(StudyError, match="is a file"):
        run_study(cohort, StudyConfig.demo(verbose=0), tmp_path / "file" / "sub")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        with pytest.raises(StudyError, match="cannot write to output folder"):
            run_study(cohort, StudyConfig.demo(verbose=0), locked)


def test_a_corrupt_test_image_fails_before_training(tmp_path, monkeypatch):
    from thyronet.datasets import load_cohort, make_ptmc_cohort

    make_ptmc_cohort(n_patients=40, image_size=16, out_dir=tmp_path / "c", random_state=0)
    cohort = load_cohort(tmp_path / "c" / "manifest.csv")
    row = cohort.index[cohort["cohort"] == "test"][-1]
    Path(cohort.loc[row, "transverse"]).write_bytes(b"not an image")
    _no_training(monkeypatch)
    with pytest.raises(StudyError, match=rf"column 'transverse', row {row!r} is corrupt"):
        run_study(cohort, StudyConfig.demo(verbose=0), tmp_path / "out")


def test_replaced_images_refuse_to_resume(tmp_path):
    from PIL import Image
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from thyronet.datasets import load_cohort

    make_ptmc_cohort(n_patients=60, image_size=16, out_dir=tmp_path / "c", random_state=0)
    cohort = load_cohort(tmp_path / "c" / "manifest.csv")

    def numeric():
        return make_pipeline(
            make_column_transformer(("passthrough", ["age", "size", "aspect_ratio"])),
            LogisticRegression(),
        )

    def run(**kwargs):
        models = {m: numeric() for m in ("dl_l", "dl_c", "dl_f", "combined", "clinical")}
        config = StudyConfig.demo(  # 34 training patients: too few for a training split
            verbose=0, shap_max_samples=0, gradcam_patients=0, early_stopping_on="validation"
        )
        return run_study(cohort, config, tmp_path / "out", models=models, **kwargs)

    run()
    assert set(run().model_status.values()) == {"loaded"}
    for path in cohort["longitudinal"]:  # same paths, same sizes, other pixels
        with Image.open(path) as img:
            flipped = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        flipped.save(path)
    with pytest.raises(StudyError, match=r"data differs: use --no-resume .* or a new --out"):
        run()
    assert set(run(resume=False).model_status.values()) == {"fitted"}

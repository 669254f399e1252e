"""``thyronet study`` and ``thyronet predict`` on a tiny synthetic cohort."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import thyronet
from thyronet.cli import _threshold_source, main
from thyronet.datasets import load_cohort, make_ptmc_cohort, save_cohort
from thyronet.model_io import load_model

TINY = [
    "--set",
    "image_size=32",
    "--set",
    "max_epochs=1",
    "--set",
    "batch_size=16",
    "--set",
    "pca_components=6",
    "--set",
    "lasso_cv=3",
    "--set",
    "gradcam_patients=0",
    "--set",
    "shap_max_samples=0",
    "--set",
    'device="cpu"',
    "-q",
]


@pytest.fixture(scope="module")
def demo_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(
        ["study", "--demo", "--out", str(out), "--n-patients", "80", "--image-size", "48", *TINY]
    )
    assert code == 0
    return out


@pytest.mark.slow
def test_study_demo_writes_everything(demo_study):
    out = demo_study
    assert (out / "cohort" / "manifest.csv").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"dl_l", "dl_c", "dl_f", "combined", "clinical"}
    assert "image_size = 32" in (out / "config.toml").read_text()
    assert (out / "report.html").read_text().count("data:image/png;base64,") >= 11
    for name in metrics:
        assert (out / "models" / name / "model.json").is_file()


@pytest.mark.slow
def test_predict_gives_probability_and_risk_group(demo_study, tmp_path, capsys):
    out = demo_study
    cohort = load_cohort(out / "cohort" / "manifest.csv")
    new = cohort[cohort["cohort"] == "test"].drop(columns=["clnm", "cohort"])
    manifest = tmp_path / "new.csv"
    save_cohort(new, manifest)
    target = tmp_path / "pred.csv"
    assert (
        main(
            [
                "predict",
                "--model",
                str(out / "models" / "combined"),
                "--manifest",
                str(manifest),
                "--out",
                str(target),
            ]
        )
        == 0
    )
    model, info = load_model(out / "models" / "combined")
    summary = capsys.readouterr().out
    assert "high risk" in summary
    # the threshold and its source are in the summary line, not on every row
    source = _threshold_source(info)
    assert source == info["metadata"]["threshold_source"]  # the study records it
    assert f"threshold {info['threshold']:.4f}, threshold source: {source};" in summary
    assert "model combined" in summary
    text = target.read_text().splitlines()
    assert text[0] == "patient_id,probability,risk_group,model,thyronet_version"
    assert all(len(line.split(",")[1].split(".")[1]) == 4 for line in text[1:])
    pred = pd.read_csv(target, dtype={"thyronet_version": str})
    assert (pred["model"] == "combined").all()
    assert (pred["thyronet_version"] == thyronet.__version__).all()
    expected = model.predict_proba(load_cohort(manifest, label=False))[:, 1]
    np.testing.assert_allclose(pred["probability"], expected, atol=5e-5)
    high = pred["risk_group"] == "high"
    assert (pred.loc[high, "probability"] >= info["threshold"] - 5e-5).all()
    assert (pred.loc[~high, "probability"] <= info["threshold"] + 5e-5).all()
    study = pd.read_csv(out / "predictions.csv").set_index("patient_id")
    np.testing.assert_allclose(
        pred["probability"], study.loc[pred["patient_id"], "combined"], atol=5e-5
    )

    # an existing output is never overwritten without --overwrite
    before = target.read_bytes()
    assert (
        main(
            [
                "predict",
                "--model",
                str(out / "models" / "combined"),
                "--manifest",
                str(manifest),
                "--out",
                str(target),
                "--threshold",
                "0.9",
                "-q",
            ]
        )
        == 2
    )
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert target.read_bytes() == before
    assert (
        main(
            [
                "predict",
                "--model",
                str(out / "models" / "combined"),
                "--manifest",
                str(manifest),
                "--out",
                str(target),
                "--threshold",
                "0.9",
                "--overwrite",
                "-q",
            ]
        )
        == 0
    )
    again = pd.read_csv(target)
    assert "threshold" not in again.columns
    assert ((again["probability"] >= 0.9) == (again["risk_group"] == "high")).all()


@pytest.mark.slow
def test_predict_refuses_a_tampered_model(demo_study, tmp_path, capsys):
    import shutil

    folder = tmp_path / "clinical"
    shutil.copytree(demo_study / "models" / "clinical", folder)
    with open(folder / "model.skops", "r+b") as handle:
        handle.seek(20)
        byte = handle.read(1)
        handle.seek(20)
        handle.write(bytes([byte[0] ^ 0xFF]))
    code = main(
        [
            "predict",
            "--model",
            str(folder),
            "--manifest",
            str(demo_study / "cohort" / "manifest.csv"),
            "--out",
            str(tmp_path / "p.csv"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "does not match the SHA-256" in err and "refusing to load" in err
    assert not (tmp_path / "p.csv").exists()

    info = json.loads((demo_study / "models" / "clinical" / "model.json").read_text())
    info["thyronet_version"] = "7.3.0"
    shutil.copytree(demo_study / "models" / "clinical", tmp_path / "old")
    (tmp_path / "old" / "model.json").write_text(json.dumps(info))
    assert (
        main(
            [
                "predict",
                "--model",
                str(tmp_path / "old"),
                "--manifest",
                str(demo_study / "cohort" / "manifest.csv"),
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 2
    )
    assert "saved by thyronet 7.3.0, which is incompatible" in capsys.readouterr().err


def test_study_refuses_bad_config_and_manifest(tmp_path, capsys):
    cohort = make_ptmc_cohort(n_patients=30, image_size=16, out_dir=tmp_path / "c", random_state=0)
    frame = load_cohort(tmp_path / "c" / "manifest.csv")
    save_cohort(frame[frame["cohort"] != "train"], tmp_path / "c" / "no_train.csv")
    code = main(
        [
            "study",
            "--manifest",
            str(tmp_path / "c" / "no_train.csv"),
            "--out",
            str(tmp_path / "o"),
            *TINY,
        ]
    )
    assert code == 2
    assert "no 'train' patients" in capsys.readouterr().err
    (tmp_path / "study.toml").write_text("[study]\nlearning_rate = 0.1\n")
    code = main(
        [
            "study",
            "--manifest",
            str(tmp_path / "c" / "manifest.csv"),
            "--config",
            str(tmp_path / "study.toml"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown config key(s) ['learning_rate']" in err and "max_epochs" in err
    assert main(["study", "--demo", "--out", str(tmp_path / "o"), "--set", "nope"]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err
    assert len(cohort) == 30


def test_study_needs_demo_or_manifest(capsys):
    with pytest.raises(SystemExit):
        main(["study", "--out", "x"])
    assert "one of the arguments --demo --manifest is required" in capsys.readouterr().err


def test_bad_fusion_fails_within_seconds_before_training(tmp_path, capsys, monkeypatch):
    import time

    import thyronet.study._run as run

    def fail(*args, **kwargs):
        raise AssertionError("a model was fitted before the checks")

    monkeypatch.setattr(run, "_fit_model", fail)
    make_ptmc_cohort(n_patients=40, image_size=16, out_dir=tmp_path / "c", random_state=0)
    start = time.perf_counter()
    code = main(
        [
            "study",
            "--manifest",
            str(tmp_path / "c" / "manifest.csv"),
            "--out",
            str(tmp_path / "o"),
            "--set",
            'fusion="nope"',
            "-q",
        ]
    )
    assert code == 2 and time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert err.startswith("error: config key 'fusion'") and "nope" in err
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "f").write_text("x")
    assert (
        main(
            [
                "study",
                "--manifest",
                str(tmp_path / "c" / "manifest.csv"),
                "--out",
                str(tmp_path / "f"),
                "-q",
            ]
        )
        == 2
    )
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"threshold_source": "Youden on validation"}, "Youden on validation"),
        ({"metadata": {"threshold_source": "fixed at 0.3"}}, "fixed at 0.3"),
        (
            {"metadata": {"threshold_rule": "youden", "trained_on": {"cohort": "train"}}},
            "Youden index on the train cohort",
        ),
        ({"metadata": {"threshold_rule": 0.3}}, "fixed in the study settings"),
        ({}, "stored with the model"),
    ],
)
def test_threshold_source_reads_the_model_info(info, expected):
    assert _threshold_source(info) == expected

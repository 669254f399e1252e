"""``thyronet predict`` requires only the columns its model reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from thyronet import DualChannelFuser, model_io
from thyronet.cli import _model_inputs, main
from thyronet.clinical import ClinicalEncoder
from thyronet.datasets import CohortError, load_cohort, make_ptmc_cohort
from thyronet.model_io import save_model
from thyronet.schema import CLINICAL_COLUMNS


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    make_ptmc_cohort(n_patients=30, image_size=32, out_dir=out, random_state=0)
    return out / "manifest.csv"


def _predict(model_dir, manifest, target):
    return main(
        [
            *("predict", "--model", str(model_dir), "--manifest", str(manifest)),
            *("--out", str(target), "-q"),
        ]
    )


def test_clinical_model_needs_only_the_clinical_columns(cohort, tmp_path, capsys):
    frame = load_cohort(cohort)
    model = Pipeline(
        [("clinical", ClinicalEncoder()), ("clf", LogisticRegression(C=0.1, max_iter=5000))]
    )
    model.fit(frame, frame["clnm"])
    folder = save_model(model, tmp_path / "clinical", threshold=0.5)
    assert _model_inputs(model) == {
        "views": (),
        "clinical": tuple(CLINICAL_COLUMNS),
        "columns": list(CLINICAL_COLUMNS),
    }
    raw = pd.read_csv(cohort)
    # No views, no label, a cohort value the schema does not know, an extra column.
    new = raw[["patient_id", *CLINICAL_COLUMNS]].assign(cohort="new", notes="seen twice")
    new.to_csv(tmp_path / "new.csv", index=False)
    assert _predict(folder, tmp_path / "new.csv", tmp_path / "p.csv") == 0
    got = pd.read_csv(tmp_path / "p.csv")
    # predict writes 4 decimals
    np.testing.assert_allclose(got["probability"], model.predict_proba(frame)[:, 1], atol=5e-5)
    new.drop(columns="age").to_csv(tmp_path / "no_age.csv", index=False)
    assert _predict(folder, tmp_path / "no_age.csv", tmp_path / "q.csv") == 2
    assert "lacks column(s) ['age']" in capsys.readouterr().err


def test_single_view_model_needs_only_its_view_and_keeps_its_roi(
    cohort, tmp_path, capsys, monkeypatch
):
    frame = load_cohort(cohort)
    model = Pipeline(
        [
            ("fuse", DualChannelFuser("longitudinal", image_size=8)),
            ("mean", FunctionTransformer(np.mean, kw_args={"axis": (2, 3)})),
            ("clf", LogisticRegression(C=0.1, max_iter=5000)),
        ]
    )
    model.fit(frame, frame["clnm"])
    # numpy.mean is not a type model files may load, so hand the model to predict directly.
    monkeypatch.setattr(model_io, "load_model", lambda path: (model, {"threshold": 0.5}))
    folder = tmp_path / "dl_l"
    assert _model_inputs(model)["columns"] == ["longitudinal"]
    raw = pd.read_csv(cohort)
    only = raw[["patient_id", "longitudinal", "longitudinal_roi"]]
    only.to_csv(cohort.parent / "only_l.csv", index=False)
    assert _predict(folder, cohort.parent / "only_l.csv", tmp_path / "p.csv") == 0
    got = pd.read_csv(tmp_path / "p.csv")
    # The ROI column was kept: the same probabilities as on the full, cropped cohort.
    np.testing.assert_allclose(got["probability"], model.predict_proba(frame)[:, 1], atol=5e-5)
    raw[["patient_id", "transverse"]].to_csv(cohort.parent / "only_c.csv", index=False)
    assert _predict(folder, cohort.parent / "only_c.csv", tmp_path / "q.csv") == 2
    assert "lacks column(s) ['longitudinal']" in capsys.readouterr().err


def test_load_cohort_columns_and_duplicated_csv_header(cohort, tmp_path):
    frame = load_cohort(cohort, views=("transverse",), clinical=["age"], label=False,
                        columns=["transverse", "age"])  # fmt: skip
    assert list(frame.columns) == ["patient_id", "transverse", "age", "transverse_roi"]
    with pytest.raises(ValueError, match=r"unknown clinical indicator\(s\) \['weight'\]"):
        load_cohort(cohort, clinical=["weight"])
    text = cohort.read_text().splitlines()
    text[0] = text[0].replace("size", "age", 1)
    (cohort.parent / "dup.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(CohortError, match=r"dup\.csv.*duplicated column name\(s\) \['age'\]"):
        load_cohort(cohort.parent / "dup.csv")

"""The cohort schema, manifests on disk and their bad-input errors."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from thyronet.datasets import (
    CLINICAL_COLUMNS,
    CLINICAL_VARIABLES,
    CohortError,
    load_cohort,
    save_cohort,
    validate_cohort,
)


def _cohort(n=4, arrays=True, tmp_path=None):
    rng = np.random.default_rng(0)
    data = {"patient_id": [f"p{i}" for i in range(n)]}
    for view in ("longitudinal", "transverse"):
        images = [rng.random((30, 40)).astype(np.float32) for _ in range(n)]
        if not arrays:
            paths = []
            for i, img in enumerate(images):
                path = tmp_path / "img" / f"{i}_{view}.png"
                path.parent.mkdir(exist_ok=True)
                Image.fromarray((img * 255).astype(np.uint8)).save(path)
                paths.append(str(path))
            images = paths
        data[view] = images
        data[f"{view}_roi"] = [(2, 3, 30, 25)] * n
    for var in CLINICAL_VARIABLES:
        if var.kind == "numeric":
            high = 3 if var.name == "aspect_ratio" else 50  # within PLAUSIBLE_RANGES
            data[var.name] = rng.uniform(0.3 if high == 3 else 1, high, n).round(1)
        else:
            data[var.name] = [var.categories[i % len(var.categories)] for i in range(n)]
    data["clnm"] = [i % 2 for i in range(n)]
    data["cohort"] = ["train", "train", "validation", "test"][:n]
    data["center"] = ["A"] * n
    return pd.DataFrame(data)


def test_validate_normalises_without_touching_input():
    frame = _cohort()
    frame.loc[0, "sex"] = "  MALE "
    frame["clnm"] = frame["clnm"].astype(float)
    before = frame.copy()
    out = validate_cohort(frame)
    assert out.loc[0, "sex"] == "male" and out["clnm"].dtype.kind == "i"
    pd.testing.assert_frame_equal(frame, before)


def test_thirteen_indicators():
    assert len(CLINICAL_COLUMNS) == 13
    assert CLINICAL_COLUMNS[0] == "age" and CLINICAL_COLUMNS[-1] == "discontinuous_capsule"


def test_unknown_category_lists_allowed():
    frame = _cohort()
    frame.loc[2, "vascularity"] = "V"
    with pytest.raises(CohortError, match=r"'vascularity'.*\['V'\].*row\(s\) 2.*'I', 'II'"):
        validate_cohort(frame)


def test_label_must_be_binary():
    frame = _cohort()
    frame.loc[3, "clnm"] = 2
    with pytest.raises(CohortError, match=r"label column 'clnm' must be 0/1; row\(s\) 3"):
        validate_cohort(frame)


def test_missing_columns_listed():
    frame = _cohort().drop(columns=["age", "margin"])
    with pytest.raises(CohortError, match=r"missing required column\(s\) \['age', 'margin'\]"):
        validate_cohort(frame)


def test_nan_view_named():
    frame = _cohort()
    frame.loc[1, "transverse"] = None
    with pytest.raises(CohortError, match=r"'transverse' is missing .* row\(s\) 1"):
        validate_cohort(frame)


def test_non_numeric_age_and_bad_cohort_named():
    frame = _cohort()
    frame["age"] = frame["age"].astype(object)
    frame.loc[0, "age"] = "forty"
    with pytest.raises(CohortError, match=r"'age'.*numeric.*row\(s\) 0.*forty"):
        validate_cohort(frame)
    frame = _cohort()
    frame.loc[1, "cohort"] = "holdout"
    with pytest.raises(CohortError, match=r"'cohort'.*holdout.*row\(s\) 1"):
        validate_cohort(frame)


def test_bad_roi_named():
    frame = _cohort()
    frame["longitudinal_roi"] = frame["longitudinal_roi"].astype(object)
    frame.at[2, "longitudinal_roi"] = (5, 5, 1, 9)
    with pytest.raises(CohortError, match=r"longitudinal_roi.*row 2.*empty"):
        validate_cohort(frame)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_with_relative_paths(tmp_path, suffix):
    frame = _cohort(arrays=False, tmp_path=tmp_path)
    manifest = save_cohort(frame, tmp_path / f"manifest{suffix}")
    if suffix == ".csv":
        text = manifest.read_text()
        assert str(tmp_path) not in text and "img/0_longitudinal.png" in text
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    tmp_path.rename(moved)
    loaded = load_cohort(moved / f"manifest{suffix}")
    assert loaded.loc[0, "longitudinal"] == str(moved / "img" / "0_longitudinal.png")
    assert loaded.loc[0, "transverse_roi"] == (2, 3, 30, 25)
    assert list(loaded["clnm"]) == list(frame["clnm"])


def test_arrays_written_as_images_and_nothing_overwritten(tmp_path):
    frame = _cohort()
    manifest = save_cohort(frame, tmp_path / "c.csv")
    loaded = load_cohort(manifest)
    from thyronet.imaging import read_image

    np.testing.assert_allclose(
        read_image(loaded.loc[1, "transverse"]), frame.loc[1, "transverse"], atol=1 / 255
    )
    assert isinstance(frame.loc[1, "transverse"], np.ndarray)  # input untouched
    with pytest.raises(CohortError, match="already exists"):
        save_cohort(frame, tmp_path / "c.csv")
    with pytest.raises(CohortError, match=r"p0_longitudinal\.png.*already exists"):
        save_cohort(frame, tmp_path / "other.csv")


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(CohortError, match=r"nope\.csv.*does not exist"):
        load_cohort(tmp_path / "nope.csv")
    with pytest.raises(CohortError, match=r"must be \.csv or \.parquet"):
        load_cohort(tmp_path / "cohort.xlsx")
    frame = _cohort(arrays=False, tmp_path=tmp_path)
    manifest = save_cohort(frame, tmp_path / "m.csv")
    (tmp_path / "img" / "3_transverse.png").unlink()
    with pytest.raises(CohortError, match=r"3_transverse\.png.*'transverse'.*row 3.*m\.csv"):
        load_cohort(manifest)


def test_unlabelled_cohort_for_prediction(tmp_path):
    frame = _cohort(arrays=False, tmp_path=tmp_path).drop(columns=["clnm"])
    loaded = load_cohort(save_cohort(frame, tmp_path / "new.csv"), label=False)
    assert "clnm" not in loaded.columns


# -- cohort rules of issue 15 -------------------------------------------------------------


def test_duplicate_patients_and_columns_are_refused():
    frame = _cohort()
    frame.loc[3, "patient_id"] = "p0"  # a training patient copied into the test cohort
    with pytest.raises(CohortError, match=r"'patient_id' must be unique; \['p0'\].*row\(s\) 0, 3"):
        validate_cohort(frame)
    frame = _cohort()
    frame.insert(1, "age", frame["age"], allow_duplicates=True)
    with pytest.raises(CohortError, match=r"duplicated column name\(s\) \['age'\]"):
        validate_cohort(frame)


@pytest.mark.parametrize(
    "column, value, match",
    [
        ("age", -5.0, r"'age'.*plausible range \[0, 120\] in row\(s\) 1"),
        ("size", 1e9, r"'size'.*plausible range \(0, 100\] in row\(s\) 1"),
        ("size", 0.0, r"'size'.*plausible range \(0, 100\]"),
        ("aspect_ratio", 25.0, r"'aspect_ratio'.*\(0, 20\]"),
        ("age", "inf", r"'age'.*must be finite; row\(s\) 1"),
    ],
)
def test_numbers_must_be_finite_and_plausible(column, value, match):
    frame = _cohort()
    frame[column] = frame[column].astype(object)
    frame.loc[1, column] = value
    with pytest.raises(CohortError, match=match):
        validate_cohort(frame)


def test_plausible_ranges_can_be_overridden():
    frame = _cohort()
    frame.loc[1, "age"] = 130.0
    assert validate_cohort(frame, ranges={"age": (0, 150, True)}).loc[1, "age"] == 130.0
    assert validate_cohort(frame, ranges={"age": None}).loc[1, "age"] == 130.0


def test_fractional_roi_and_identical_views_are_refused(tmp_path):
    frame = _cohort()
    frame["longitudinal_roi"] = frame["longitudinal_roi"].astype(object)
    frame.loc[2, "longitudinal_roi"] = "0.2 0.2 0.8 0.8"
    with pytest.raises(CohortError, match=r"'longitudinal_roi', row 2.*fractions.*give pixels"):
        validate_cohort(frame)
    frame = _cohort(arrays=False, tmp_path=tmp_path)
    frame.loc[1, "transverse"] = frame.loc[1, "longitudinal"]
    with pytest.raises(CohortError, match=r"same image file in row\(s\) 1"):
        validate_cohort(frame)


def test_a_directory_given_as_the_manifest_has_its_own_message(tmp_path):
    with pytest.raises(CohortError, match=r"is a directory; give the manifest CSV/Parquet file$"):
        load_cohort(tmp_path)
    (tmp_path / "study.csv").mkdir()
    with pytest.raises(CohortError, match=r"study\.csv' is a directory; give"):
        load_cohort(tmp_path / "study.csv")
    save_cohort(_cohort(arrays=False, tmp_path=tmp_path), tmp_path / "manifest.csv")
    with pytest.raises(CohortError, match=r"is a directory; .* \(it holds manifest\.csv\)$"):
        load_cohort(tmp_path)

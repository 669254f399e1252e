"""ClinicalEncoder: readable encoding of the 13 clinical indicators, and bad input."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from thyronet import ClassifierSelector, ClinicalEncoder, LassoSelector, PValueSelector
from thyronet.datasets import CLINICAL_COLUMNS, CLINICAL_VARIABLES, CohortError

EXPECTED_NAMES = [
    "age",
    "size",
    "aspect_ratio",
    "sex_male",
    "ete_present",
    "margin_unclear",
    "shape_irregular",
    "capsular_contact_present",
    "discontinuous_capsule_present",
    "echogenicity",
    "location_upper",
    "location_middle",
    "location_lower",
    "location_isthmus",
    "vascularity_I",
    "vascularity_II",
    "vascularity_III",
    "vascularity_IV",
    "calcification_absent",
    "calcification_micro",
    "calcification_coarse",
    "calcification_mixed",
]


def _cohort(n=40, seed=0):
    """A cohort-like frame: the 13 indicators, a label and extra columns to ignore."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)]})
    for var in CLINICAL_VARIABLES:
        if var.kind == "numeric":
            frame[var.name] = np.round(rng.uniform(1, 60, n), 1)
        else:
            frame[var.name] = rng.choice(var.categories, n)
    frame["cohort"] = "train"
    frame["oracle_risk"] = rng.random(n)
    frame["longitudinal"] = [np.zeros((4, 4))] * n  # image arrays in cells
    frame.index = pd.RangeIndex(100, 100 + n)
    return frame


def test_feature_names_and_schema_order():
    encoder = ClinicalEncoder().fit(_cohort())
    assert encoder.get_feature_names_out().tolist() == EXPECTED_NAMES
    assert encoder.n_features_in_ == len(_cohort().columns)


def test_encoding_values():
    frame = _cohort(n=6)
    frame.loc[100, ["sex", "echogenicity", "location", "ete"]] = [
        "male",
        "markedly_hypoechoic",
        "isthmus",
        "absent",
    ]
    frame.loc[101, ["sex", "echogenicity", "location", "ete"]] = [
        "female",
        "hyper_isoechoic",
        "upper",
        "present",
    ]
    out = ClinicalEncoder().set_output(transform="pandas").fit_transform(frame)
    assert out.loc[
        100, ["sex_male", "echogenicity", "location_isthmus", "ete_present"]
    ].tolist() == [1, 2, 1, 0]
    assert out.loc[101, ["sex_male", "echogenicity", "location_upper", "ete_present"]].tolist() == [
        0,
        0,
        1,
        1,
    ]
    location = out[[c for c in EXPECTED_NAMES if c.startswith("location_")]]
    assert (location.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(out["age"], frame["age"])
    assert out.index.equals(frame.index)
    assert (out.dtypes == np.float64).all()


def test_unseen_schema_categories_still_get_their_columns():
    frame = _cohort()
    frame["location"] = "upper"
    encoder = ClinicalEncoder().fit(frame)
    test = _cohort(seed=1)
    test["location"] = "isthmus"
    out = pd.DataFrame(encoder.transform(test), columns=encoder.get_feature_names_out())
    assert (out["location_isthmus"] == 1).all()


def test_spelling_is_forgiving_and_extra_columns_are_ignored():
    frame = _cohort()
    messy = frame.copy()
    messy["sex"] = messy["sex"].str.upper() + "  "
    messy = messy.drop(columns=["oracle_risk", "cohort"])
    messy = messy[list(messy.columns[::-1])].assign(center="B")
    encoder = ClinicalEncoder().fit(frame)
    np.testing.assert_array_equal(encoder.transform(messy), encoder.transform(frame))


@pytest.mark.parametrize("stage", ["fit", "transform"])
def test_missing_clinical_columns_are_listed(stage):
    frame = _cohort()
    broken = frame.drop(columns=["ete", "vascularity"])
    encoder = ClinicalEncoder()
    if stage == "transform":
        encoder.fit(frame)
    with pytest.raises(CohortError, match=r"missing clinical column\(s\) \['ete', 'vascularity'\]"):
        getattr(encoder, stage if stage == "fit" else "transform")(broken)


def test_unknown_category_error_lists_allowed_values_and_rows():
    encoder = ClinicalEncoder().fit(_cohort())
    test = _cohort(n=5)
    test.loc[102, "vascularity"] = "V"
    with pytest.raises(
        CohortError,
        match=r"'vascularity' has unknown category \['V'\] in row\(s\) "
        r"102; allowed: \['I', 'II', 'III', 'IV'\].*handle_unknown='impute'",
    ):
        encoder.transform(test)


def test_unknown_category_in_fit_always_raises():
    frame = _cohort()
    frame.loc[101, "sex"] = "unknown"
    with pytest.raises(CohortError, match="'sex' has unknown category"):
        ClinicalEncoder(handle_unknown="impute").fit(frame)


def test_handle_unknown_impute_uses_the_training_mode():
    train = _cohort()
    train["calcification"] = ["micro"] * 30 + ["absent"] * 10
    encoder = ClinicalEncoder(handle_unknown="impute").set_output(transform="pandas")
    encoder.fit(train)
    test = _cohort(n=3)
    test["calcification"] = ["eggshell", "absent", "coarse"]
    out = encoder.transform(test)
    assert out.loc[100, "calcification_micro"] == 1
    assert (
        out.loc[100, ["calcification_absent", "calcification_coarse", "calcification_mixed"]].sum()
        == 0
    )


def test_missing_values_are_imputed_from_training_data():
    frame = _cohort()
    frame["age"] = frame["age"].astype(object)
    frame.loc[100, "age"] = np.nan
    frame.loc[101, "age"] = None
    frame["margin"] = ["unclear"] * 30 + ["clear"] * 10
    frame.loc[102, "margin"] = None
    frame.loc[103, "margin"] = " "
    encoder = ClinicalEncoder().set_output(transform="pandas").fit(frame)
    out = encoder.transform(frame)
    assert out.loc[100, "age"] == pytest.approx(np.nanmedian(frame["age"].astype(float)))
    assert out.loc[[102, 103], "margin_unclear"].tolist() == [1, 1]
    assert out.loc[101, "age"] == out.loc[100, "age"]


def test_impute_false_reports_missing_rows():
    frame = _cohort()
    frame.loc[103, "size"] = np.nan
    with pytest.raises(CohortError, match=r"'size' is missing in row\(s\) 103"):
        ClinicalEncoder(impute=False).fit(frame)


def test_entirely_missing_column_and_non_numeric_values():
    frame = _cohort()
    frame["shape"] = None
    with pytest.raises(CohortError, match="'shape' is missing in every row"):
        ClinicalEncoder().fit(frame)
    frame = _cohort()
    frame["age"] = frame["age"].astype(object)
    frame.loc[104, "age"] = "forty"
    with pytest.raises(
        CohortError, match=r"'age' .* must be numeric; row\(s\) 104 hold \['forty'\]"
    ):
        ClinicalEncoder().fit(frame)


def test_needs_a_dataframe_and_fit():
    with pytest.raises(TypeError, match="needs a pandas DataFrame"):
        ClinicalEncoder().fit(np.zeros((3, 13)))
    with pytest.raises(NotFittedError):
        ClinicalEncoder().transform(_cohort())
    with pytest.raises(ValueError, match="handle_unknown"):
        ClinicalEncoder(handle_unknown="ignore").fit(_cohort())


def test_input_frame_is_not_modified():
    frame = _cohort()
    frame.loc[100, "age"] = np.nan
    frame.loc[101, "sex"] = " MALE "
    before = frame.copy()
    ClinicalEncoder().fit(frame).transform(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_clinical_model_pipeline_names_the_surviving_indicators():
    """Clinical encoding -> scaling -> P value -> LASSO -> classifier, all in pandas."""
    frame = _cohort(n=160, seed=3)
    rng = np.random.default_rng(3)
    logit = 0.08 * (frame["size"] - 30) + 1.5 * (frame["ete"] == "present") - 0.5
    y = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    model = Pipeline(
        [
            ("clinical", ClinicalEncoder()),
            ("scale", StandardScaler()),
            ("pvalue", PValueSelector()),
            ("lasso", LassoSelector(alphas=20)),
            ("classify", ClassifierSelector(cv=3)),
        ]
    ).set_output(transform="pandas")
    model.fit(frame, y)
    names = model[:-1].get_feature_names_out().tolist()
    assert {"size", "ete_present"} <= set(names)
    assert set(names) <= set(EXPECTED_NAMES)
    assert isinstance(model[:-1].transform(frame), pd.DataFrame)
    search = GridSearchCV(model, {"lasso__selection": ["min", "1se"]}, cv=3, scoring="roc_auc").fit(
        frame, y
    )
    assert search.best_score_ > 0.6
    assert clone(model).get_params()["clinical__handle_unknown"] == "error"
    assert set(CLINICAL_COLUMNS) < set(frame.columns)

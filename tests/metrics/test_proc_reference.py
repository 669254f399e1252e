"""Agreement with R's pROC on the shared reference cases (``../shared/reference/proc``).

Every case of ``paired_expected.csv`` and ``unpaired_expected.csv`` is checked:
1e-9 relative on AUC, variance, covariance, z, df and confidence limits; 1e-6
relative on P values.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from thyronet.metrics import (
    compare_models,
    delong_covariance,
    delong_test,
    delong_test_unpaired,
    delong_variance,
    roc_auc_ci,
)

PROC_ENV = "THYRONET_PROC_REFERENCE"
RTOL = 1e-9
P_RTOL = 1e-6


def _reference_dir() -> Path:
    # A copy of ../shared/reference/proc ships with the tests (tests/metrics/data/proc)
    # so CI always checks agreement; THYRONET_PROC_REFERENCE points elsewhere.
    default = Path(__file__).resolve().parent / "data" / "proc"
    return Path(os.environ.get(PROC_ENV, default))


REF = _reference_dir()
_HAVE_REF = (REF / "scores.csv").is_file()
_SKIP = pytest.mark.skipif(
    not _HAVE_REF, reason=f"pROC reference not found at {REF} (set {PROC_ENV})"
)


def _cases(name: str) -> list:
    if not _HAVE_REF:
        return [pytest.param(None, id="no-reference")]
    table = pd.read_csv(REF / name)
    return [pytest.param(row, id=f"case{int(row.case)}") for _, row in table.iterrows()]


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return pd.read_csv(REF / "scores.csv")


def _case(scores: pd.DataFrame, case) -> pd.DataFrame:
    data = scores[scores["case"] == case]
    assert len(data) > 0
    return data


@_SKIP
def test_reference_is_complete():
    paired = pd.read_csv(REF / "paired_expected.csv")
    unpaired = pd.read_csv(REF / "unpaired_expected.csv")
    data = pd.read_csv(REF / "scores.csv")
    assert len(paired) == data["case"].nunique() >= 30
    assert set(unpaired["case"]) <= set(paired["case"])
    assert unpaired["statistic"].isna().any()  # the NA case we must handle explicitly


@_SKIP
@pytest.mark.parametrize("row", _cases("paired_expected.csv"))
def test_paired_delong_matches_proc(scores, row):
    data = _case(scores, row.case)
    assert len(data) == row.n and data["y"].sum() == row.n_pos
    y, s1, s2 = data["y"], data["s1"], data["s2"]
    test = delong_test(y, s1, s2)
    assert_allclose([test.auc_a, test.auc_b], [row.auc1, row.auc2], rtol=RTOL, atol=0)
    assert_allclose(
        [test.var_a, test.var_b, test.covariance],
        [row.var1, row.var2, row.cov12],
        rtol=RTOL,
        atol=0,
    )
    assert_allclose(test.difference, row.auc1 - row.auc2, rtol=RTOL, atol=1e-15)
    # z is exactly 0 in pROC when the two AUCs are equal
    assert_allclose(test.z, row.z, rtol=RTOL, atol=0 if row.z else 1e-300)
    assert_allclose(test.p_value, row.p, rtol=P_RTOL, atol=0)
    assert_allclose(
        [test.ci_low, test.ci_high], [row.diff_ci_low, row.diff_ci_high], rtol=RTOL, atol=0
    )
    # the accessors
    assert_allclose(delong_variance(y, s1), row.var1, rtol=RTOL, atol=0)
    assert_allclose(delong_variance(y, s2), row.var2, rtol=RTOL, atol=0)
    assert_allclose(delong_covariance(y, s1, s2), row.cov12, rtol=RTOL, atol=0)
    # per-curve DeLong CI, clipped to [0, 1]
    for score, key in ((s1, "auc1"), (s2, "auc2")):
        auc, low, high = roc_auc_ci(y, score)
        assert_allclose(
            [auc, low, high],
            [row[key], row[f"{key}_ci_low"], row[f"{key}_ci_high"]],
            rtol=RTOL,
            atol=0,
        )
    # the comparison table gives the same numbers
    cmp = compare_models(y, {"s1": s1, "s2": s2})
    assert_allclose(
        cmp.auc["ci_low"].to_numpy(), [row.auc1_ci_low, row.auc2_ci_low], rtol=RTOL, atol=0
    )
    assert_allclose(cmp.p_values.loc["s1", "s2"], row.p, rtol=P_RTOL, atol=0)


@_SKIP
@pytest.mark.parametrize("row", _cases("unpaired_expected.csv"))
def test_unpaired_delong_matches_proc(scores, row):
    data = _case(scores, row.case)
    split = int(row.split)  # subjects 1..split (1-based, file order) form cohort a
    a, b = data.iloc[:split], data.iloc[split:]
    if pd.isna(row.statistic):
        # pROC returns NA: a cohort has a single subject of a class. We raise instead.
        with pytest.raises(ValueError, match="at least 2 positive and 2 negative"):
            delong_test_unpaired(a["y"], a["s1"], b["y"], b["s2"])
        return
    test = delong_test_unpaired(a["y"], a["s1"], b["y"], b["s2"])
    assert_allclose([test.auc_a, test.auc_b], [row.auc_a, row.auc_b], rtol=RTOL, atol=0)
    assert_allclose([test.statistic, test.df], [row.statistic, row.df], rtol=RTOL, atol=0)
    assert_allclose(test.p_value, row.p, rtol=P_RTOL, atol=0)


@_SKIP
def test_reference_cases_cover_ties_and_probabilities(scores):
    """The reference exercises what our implementation must get right: ties and sizes."""
    tied = scores.groupby("case")["s1"].apply(lambda s: s.duplicated().any())
    assert tied.sum() >= 5
    assert scores.groupby("case").size().max() >= 400
    assert np.isfinite(scores[["s1", "s2"]].to_numpy()).all()

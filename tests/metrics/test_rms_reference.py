"""Agreement with R's rms and Hmisc on the shared reference cases (``../shared/reference/rms``).

Every case of ``val_prob_expected.csv`` (``rms::val.prob(p1, y)``) and of
``improve_prob_expected.csv`` (``Hmisc::improveProb(p1, p2, y)``) is checked at
the reference README's tolerances: 1e-9 relative on the indexes and NRI/IDI,
1e-6 on P values and the lowess-based Emax/E90/Eavg, 1e-5 on what R fits
iteratively (intercept, slope).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from thyronet.metrics import calibration_summary, reclassification

RMS_ENV = "THYRONET_RMS_REFERENCE"
RTOL = 1e-9
P_RTOL = 1e-6
P_ATOL = 1e-14  # R's 1 - pchisq(...) underflows to 0 where thyronet's upper tail does not
SMOOTH_RTOL = 1e-6
FIT_RTOL = 1e-5


def _reference_dir() -> Path:
    # A copy of ../shared/reference/rms ships with the tests (tests/metrics/data/rms)
    # so CI always checks agreement; THYRONET_RMS_REFERENCE points elsewhere.
    default = Path(__file__).resolve().parent / "data" / "rms"
    return Path(os.environ.get(RMS_ENV, default))


REF = _reference_dir()
_HAVE_REF = (REF / "probabilities.csv").is_file()
_SKIP = pytest.mark.skipif(
    not _HAVE_REF, reason=f"rms reference not found at {REF} (set {RMS_ENV})"
)


def _cases(name: str) -> list:
    if not _HAVE_REF:
        return [pytest.param(None, id="no-reference")]
    table = pd.read_csv(REF / name)
    return [pytest.param(row, id=f"case{int(row.case)}") for _, row in table.iterrows()]


@pytest.fixture(scope="module")
def probabilities() -> pd.DataFrame:
    return pd.read_csv(REF / "probabilities.csv")


def _case(probabilities: pd.DataFrame, case) -> pd.DataFrame:
    data = probabilities[probabilities["case"] == case]
    assert len(data) > 0
    return data


@_SKIP
def test_reference_is_complete(probabilities):
    val = pd.read_csv(REF / "val_prob_expected.csv")
    improve = pd.read_csv(REF / "improve_prob_expected.csv")
    n_cases = probabilities["case"].nunique()
    assert len(val) == len(improve) == n_cases >= 30
    # ties (rounded cases) and the clipped extremes are exercised
    tied = probabilities.groupby("case")["p1"].apply(lambda s: s.duplicated().any())
    assert tied.sum() >= 5
    assert probabilities["p1"].between(1e-4, 1 - 1e-4).all()


@_SKIP
@pytest.mark.parametrize("row", _cases("val_prob_expected.csv"))
def test_calibration_summary_matches_val_prob(probabilities, row):
    data = _case(probabilities, row.case)
    s = calibration_summary(data["y"], data["p1"])
    assert (s.n, s.n_events) == (row.n, row.n_pos)
    assert_allclose(
        [s.c_index, s.brier, s.spiegelhalter_z, s.d, s.u, s.q, s.r2],
        [row.c_index, row.brier, row.spiegelhalter_z, row.d, row.u, row.q, row.r2],
        rtol=RTOL,
        atol=0,
    )
    assert_allclose(
        [s.spiegelhalter_p, s.u_p], [row.spiegelhalter_p, row.u_p], rtol=P_RTOL, atol=P_ATOL
    )
    assert_allclose([s.emax, s.e90, s.eavg], [row.emax, row.e90, row.eavg], rtol=SMOOTH_RTOL)
    assert_allclose([s.intercept, s.slope], [row.intercept, row.slope], rtol=FIT_RTOL)
    # the Wald intervals surround their estimates
    assert s.intercept_ci[0] < s.intercept < s.intercept_ci[1]
    assert s.slope_ci[0] < s.slope < s.slope_ci[1]
    lo, hi = s.calibration_in_the_large_ci
    assert lo < s.calibration_in_the_large < hi


@_SKIP
@pytest.mark.parametrize("row", _cases("improve_prob_expected.csv"))
def test_reclassification_matches_improve_prob(probabilities, row):
    data = _case(probabilities, row.case)
    r = reclassification(data["y"], data["p1"], data["p2"])
    got = [
        r.nri,
        r.nri_se,
        r.nri_events,
        r.nri_events_se,
        r.nri_nonevents,
        r.nri_nonevents_se,
        r.idi,
        r.idi_se,
        r.nri_z,
        r.idi_z,
    ]
    expected = [
        row.nri,
        row.se_nri,
        row.nri_ev,
        row.se_nri_ev,
        row.nri_ne,
        row.se_nri_ne,
        row.idi,
        row.se_idi,
        row.z_nri,
        row.z_idi,
    ]
    # exact zeros (e.g. an NRI part of 0 or a standard error of 0) must be exactly 0
    assert_allclose(got, expected, rtol=RTOL, atol=0)
    z = stats.norm.ppf(0.975)
    assert_allclose(r.nri_ci, [r.nri - z * r.nri_se, r.nri + z * r.nri_se], rtol=RTOL)
    assert_allclose(r.idi_ci, [r.idi - z * r.idi_se, r.idi + z * r.idi_se], rtol=RTOL)
    assert_allclose(r.nri_p, 2 * stats.norm.sf(abs(row.z_nri)), rtol=P_RTOL, atol=P_ATOL)
    assert_allclose(r.idi_p, 2 * stats.norm.sf(abs(row.z_idi)), rtol=P_RTOL, atol=P_ATOL)

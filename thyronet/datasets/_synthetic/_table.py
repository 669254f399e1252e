"""The synthetic cohort's table: clinical indicators, image truth, risk and label.

Latent scores correlated through one "aggressiveness" factor are mapped per cohort
onto the paper's Table 1 (:data:`~thyronet.datasets._synthetic._params.TABLE1`); the
image traits, the true risk and the clinical readings follow (see
:func:`thyronet.datasets.make_ptmc_cohort`, "Clinical table" and "Risk model").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr

from thyronet.datasets._synthetic._geometry import render_parameters
from thyronet.datasets._synthetic._params import (
    _MAX_CLUSTER,
    _MAX_MICRO,
    _TAILS,
    COHORT_CENTER,
    RISK_COEFFICIENTS,
    TABLE1,
)
from thyronet.schema import CLINICAL_BY_NAME, COHORTS


def cohort_sizes(n_patients: int) -> dict[str, int]:
    """Split ``n_patients`` into train/validation/test in the paper's 265 : 114 : 82.

    Examples
    --------
    >>> from thyronet.datasets._synthetic import cohort_sizes
    >>> cohort_sizes(461)
    {'train': 265, 'validation': 114, 'test': 82}
    """
    total = sum(TABLE1[c]["n"] for c in COHORTS)
    counts = _quota({c: TABLE1[c]["n"] / total for c in COHORTS}, n_patients)
    return dict(zip(COHORTS, counts, strict=True))


def _quota(shares: dict, n: int) -> list[int]:
    """Largest-remainder apportionment of ``n`` to ``shares``."""
    p = np.array(list(shares.values()), dtype=float)
    p = p / p.sum()
    raw = p * n
    counts = np.floor(raw).astype(int)
    rest = n - counts.sum()
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts.tolist()


def _by_rank(score: np.ndarray, counts: list[int]) -> np.ndarray:
    """Category index per patient: the lowest ``counts[0]`` scores get 0, and so on."""
    labels = np.empty(score.size, dtype=int)
    labels[np.argsort(score, kind="stable")] = np.repeat(np.arange(len(counts)), counts)
    return labels


def _quantile_map(score: np.ndarray, name: str, quartiles, rng) -> np.ndarray:
    """Stratified draw from the piecewise-linear distribution through Table 1's quartiles."""
    (lo, p5), (p95, hi) = _TAILS[name]
    knots_p = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]
    knots_v = [lo, p5, *quartiles, p95, hi]
    n = score.size
    ranks = np.empty(n)
    ranks[np.argsort(score, kind="stable")] = np.arange(n)
    u = (ranks + rng.uniform(0.05, 0.95, n)) / n
    return np.interp(u, knots_p, knots_v)


def _shuffle_some(labels: np.ndarray, fraction: float, rng) -> np.ndarray:
    """Permute the readings of a random ``fraction`` of patients (keeps the category counts)."""
    out = labels.copy()
    k = round(fraction * labels.size)
    if k >= 2:
        who = rng.choice(labels.size, size=k, replace=False)
        out[who] = labels[rng.permutation(who)]
    return out


def _simulate_table(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """Clinical table, image truth, risk, label and per-patient rendering parameters.

    The steps draw from ``rng`` in a fixed order (latent scores, Table 1 draws,
    geometry and traits, label, readings, rendering parameters): the same seed
    gives the same cohort.
    """
    sizes = cohort_sizes(n)
    cohort = np.repeat(np.array(COHORTS, dtype=object), [sizes[c] for c in COHORTS])
    u = _latent_scores(n, rng)
    truth = _draw_table1(cohort, u, rng)
    truth.update(_traits(truth, u, n, rng))
    truth["risk"] = expit(_risk_logit(truth))
    truth["clnm"] = (rng.uniform(size=n) < truth["risk"]).astype(int)
    readings = _readings(truth, cohort, n, rng)
    table = _frame(cohort, truth, readings)
    geom = render_parameters(rng, truth)
    return table, geom


def _latent_scores(n: int, rng) -> dict[str, np.ndarray]:
    """Latent Gaussian scores correlated through one "aggressiveness" factor."""
    z = rng.standard_normal(n)  # latent aggressiveness

    def latent(loading: float) -> np.ndarray:
        return loading * z + np.sqrt(1 - loading**2) * rng.standard_normal(n)

    u = {
        k: latent(w)
        for k, w in [
            ("age", 0.0),
            ("size", 0.3),
            ("ar", 0.2),
            ("spic", 0.15),
            ("clus", 0.15),
            ("lob", 0.15),
            ("med", 0.15),
            ("cap", 0.35),
            ("echo", 0.25),
            ("blur", 0.3),
            ("calc", 0.35),
            ("sex", 0.0),
            ("loc", 0.0),
        ]
    }
    u["vasc"] = 0.4 * u["size"] + np.sqrt(1 - 0.4**2) * rng.standard_normal(n)
    return u


def _draw_table1(cohort: np.ndarray, u: dict, rng) -> dict[str, np.ndarray]:
    """Per cohort, map the latent scores onto that cohort's Table 1 column."""
    n = cohort.size
    out = {k: np.empty(n) for k in ("age", "size", "ar", "echo")}
    for k in ("sex", "location", "vascularity", "echogenicity", "calcification", "capsule"):
        out[k] = np.empty(n, dtype=int)  # capsule: 0 none, 1 contact, 2 + break, 3 + ETE
    for c in COHORTS:
        sl = cohort == c
        m = int(sl.sum())
        if m == 0:
            continue
        for key, value in _draw_cohort(TABLE1[c], {k: v[sl] for k, v in u.items()}, m, rng).items():
            out[key][sl] = value
    out["male"] = out["sex"] == 1
    return out


def _draw_cohort(t: dict, u: dict, m: int, rng) -> dict[str, np.ndarray]:
    """Table 1 draws of one cohort of ``m`` patients (``u``: their latent scores)."""
    out = {
        "age": np.round(_quantile_map(u["age"], "age", t["age"], rng)),
        "size": _quantile_map(u["size"], "size", t["size"], rng),
        "ar": _quantile_map(u["ar"], "aspect_ratio", t["aspect_ratio"], rng),
        "sex": _by_rank(u["sex"], _quota(t["sex"], m)),
        "location": _by_rank(u["loc"], _quota(t["location"], m)),
        "vascularity": _by_rank(u["vasc"], _quota(t["vascularity"], m)),
    }
    echo_counts = _quota(t["echogenicity"], m)
    out["echogenicity"] = _by_rank(u["echo"], echo_counts)
    # calcification ranked in order of aggressiveness: absent < coarse < micro < mixed
    calc_counts = _quota(t["calcification"], m)
    order = [0, 2, 1, 3]
    ranked = _by_rank(u["calc"], [calc_counts[k] for k in order])
    out["calcification"] = np.array(order)[ranked]
    # nested capsule findings: none < contact < contact + break < + ETE
    cc = t["capsular_contact"]["present"]
    dc = t["discontinuous_capsule"]["present"]
    ete = t["ete"]["present"]
    level_shares = {"none": t["n"] - cc, "cc": cc - dc, "dc": dc - ete, "ete": ete}
    out["capsule"] = _by_rank(u["cap"], _quota(level_shares, m))
    out["echo"] = _echo_ratio(u["echo"], echo_counts, out["echogenicity"])
    return out


def _echo_ratio(score: np.ndarray, echo_counts: list[int], grade: np.ndarray) -> np.ndarray:
    """Echo amplitude ratio: continuous and monotone in the rank, jumps between grades."""
    m = score.size
    q = np.empty(m)
    q[np.argsort(score, kind="stable")] = (np.arange(m) + 0.5) / m
    b1 = echo_counts[0] / m
    b2 = (echo_counts[0] + echo_counts[1]) / m
    return np.where(
        grade == 0,
        1.05 - 0.25 * q / max(b1, 1e-9),
        np.where(
            grade == 1,
            0.5 - 0.16 * (q - b1) / max(b2 - b1, 1e-9),
            0.26 - 0.14 * (q - b2) / max(1 - b2, 1e-9),
        ),
    )


def _traits(truth: dict, u: dict, n: int, rng) -> dict[str, np.ndarray]:
    """Nodule geometry (mm) and the image traits."""
    elong = np.clip(np.exp(rng.normal(0.1, 0.18, n)), 0.75, 1.8)
    d_lat = np.ones(n)
    d_ap = truth["ar"].copy()
    d_cc = elong * np.maximum(d_lat, d_ap)
    scale = truth["size"] / np.maximum.reduce([d_cc, d_lat, d_ap])
    out = {"d_cc": d_cc * scale, "d_lat": d_lat * scale, "d_ap": d_ap * scale}
    out["spic"] = 0.55 * ndtr(u["spic"]) ** 2  # longitudinal-only polar spiculation
    out["lob"] = 0.55 * ndtr(u["lob"]) ** 2  # transverse-only lateral lobulation
    out["blur"] = ndtr(u["blur"])
    # medial capsule: gap < 0 means the nodule abuts it and is flattened against it;
    # the contact is the share of the nodule's antero-posterior depth lying on the capsule
    a_lat = out["d_lat"] / 2
    out["medial_gap"] = a_lat * (_MEDIAL_SPAN * ndtr(-u["med"]) ** 1.2 - _MEDIAL_DEPTH)
    flat = np.clip(-out["medial_gap"] / a_lat, 0.0, 1.0)
    out["medial_contact"] = np.sqrt(1 - (1 - flat) ** 2)
    calc = truth["calcification"]
    has_micro = (calc == 1) | (calc == 3)
    out["has_coarse"] = (calc == 2) | (calc == 3)
    out["n_micro"] = np.where(has_micro, 1 + np.minimum(rng.poisson(0.8, n), _MAX_MICRO - 1), 0)
    lam = np.exp(0.5 + 0.8 * u["clus"])
    out["n_cluster"] = np.where(has_micro, np.minimum(rng.poisson(lam), _MAX_CLUSTER), 0)
    level = truth["capsule"]
    out["contact"], out["cap_break"], out["ete"] = level >= 1, level >= 2, level >= 3
    rank_cap = ndtr(u["cap"])
    out["capsule_gap"] = np.where(
        out["contact"],
        np.where(out["ete"], -(0.15 + 0.5 * rng.uniform(size=n)), 0.0),
        0.3 + 2.2 * (1 - rank_cap) ** 1.5,
    )
    return out


_MEDIAL_SPAN = 1.3  # gap up to 0.95 semi-widths away from the capsule
_MEDIAL_DEPTH = 0.35  # flattened by up to 35 % of the semi-width (contact up to 0.76)


def _risk_logit(t: dict) -> np.ndarray:
    """Log-odds of CLNM under :data:`RISK_COEFFICIENTS`."""
    b = RISK_COEFFICIENTS
    return (
        b["intercept"]
        + b["age_per_10y_below_43"] * (43.0 - t["age"]) / 10.0
        + b["male"] * t["male"]
        + b["size_per_mm_above_6"] * (t["size"] - 6.0)
        + b["aspect_ratio_per_0.2_above_1.1"] * (t["ar"] - 1.1) / 0.2
        + b["capsular_contact"] * t["contact"]
        + b["capsule_break"] * t["cap_break"]
        + b["ete"] * t["ete"]
        + b["echo_darkness"] * (0.6 - t["echo"]) / 0.3
        + b["margin_blur"] * t["blur"]
        + b["central_microcalcifications"] * t["n_micro"]
        + b["polar_spiculation"] * t["spic"] / 0.55
        + b["calcification_cluster_per_focus"] * t["n_cluster"]
        + b["lateral_lobulation"] * t["lob"] / 0.55
        + b["medial_capsule_contact"] * t["medial_contact"]
    )


def _readings(t: dict, cohort: np.ndarray, n: int, rng) -> dict[str, np.ndarray]:
    """Clinical readings of the image truth: measurement noise, thresholds, shuffles."""
    out = {
        "size": np.clip(np.round(t["size"] + rng.normal(0, 0.25, n), 1), 1.5, 10.0),
        "ar": np.round(t["ar"] * np.exp(rng.normal(0, 0.05, n)), 2),
    }
    irregular = t["spic"] / 0.55 + t["lob"] / 0.55
    margin_score = t["blur"] + 0.5 * irregular + rng.normal(0, 0.45, n)
    shape_score = 0.6 * irregular + 0.5 * (t["ar"] > 1.0) + rng.normal(0, 0.45, n)
    for k in ("margin", "shape", "calcification", "echogenicity", "capsule"):
        out[k] = np.empty(n, dtype=int)
    for c in COHORTS:
        sl = cohort == c
        m = int(sl.sum())
        if m == 0:
            continue
        t1 = TABLE1[c]
        out["margin"][sl] = _by_rank(margin_score[sl], _quota(t1["margin"], m))
        out["shape"][sl] = _by_rank(shape_score[sl], _quota(t1["shape"], m))
        out["calcification"][sl] = _shuffle_some(t["calcification"][sl], 0.12, rng)
        out["echogenicity"][sl] = _shuffle_some(t["echogenicity"][sl], 0.15, rng)
        out["capsule"][sl] = _shuffle_some(t["capsule"][sl], 0.12, rng)
    return out


def _names(var: str, codes: np.ndarray) -> np.ndarray:
    return np.array(CLINICAL_BY_NAME[var].categories, dtype=object)[codes]


def _frame(cohort: np.ndarray, t: dict, r: dict) -> pd.DataFrame:
    """The table: patient id, clinical readings, label, cohort, risk and image truth."""
    n = cohort.size
    width = max(4, len(str(n)))
    yes_no = np.array(["absent", "present"], dtype=object)
    clinical = {
        "patient_id": [f"ptmc-{i + 1:0{width}d}" for i in range(n)],
        "age": t["age"],
        "sex": _names("sex", t["sex"]),
        "location": _names("location", t["location"]),
        "size": r["size"],
        "aspect_ratio": r["ar"],
        "ete": yes_no[(r["capsule"] >= 3).astype(int)],
        "echogenicity": _names("echogenicity", r["echogenicity"]),
        "margin": _names("margin", r["margin"]),
        "shape": _names("shape", r["shape"]),
        "vascularity": _names("vascularity", t["vascularity"]),
        "calcification": _names("calcification", r["calcification"]),
        "capsular_contact": yes_no[(r["capsule"] >= 1).astype(int)],
        "discontinuous_capsule": yes_no[(r["capsule"] >= 2).astype(int)],
        "clnm": t["clnm"],
        "cohort": cohort,
        "center": [COHORT_CENTER[c] for c in cohort],
        "oracle_risk": t["risk"],
    }
    truth = {
        "truth_shared_size_mm": t["size"],
        "truth_shared_aspect_ratio": t["ar"],
        "truth_shared_depth_mm": t["d_ap"],
        "truth_shared_capsule_gap_mm": t["capsule_gap"],
        "truth_shared_capsular_contact": t["contact"].astype(int),
        "truth_shared_capsule_break": t["cap_break"].astype(int),
        "truth_shared_ete": t["ete"].astype(int),
        "truth_shared_echo": t["echo"],
        "truth_shared_margin_blur": t["blur"],
        "truth_shared_micro_foci": t["n_micro"],
        "truth_shared_coarse": t["has_coarse"].astype(int),
        "truth_long_length_mm": t["d_cc"],
        "truth_long_spiculation": t["spic"] / 0.55,
        "truth_long_calc_cluster": t["n_cluster"],
        "truth_trans_width_mm": t["d_lat"],
        "truth_trans_lobulation": t["lob"] / 0.55,
        "truth_trans_medial_gap_mm": t["medial_gap"],
        "truth_trans_medial_contact": t["medial_contact"],
    }
    return pd.DataFrame({**clinical, **truth})

"""Parameters of the synthetic PTMC cohort's generative model.

Table 1 targets per cohort (:data:`TABLE1`), the true risk model
(:data:`RISK_COEFFICIENTS`), the image-truth columns (:data:`TRUTH_COLUMNS`) and the
scanner looks per centre (:data:`SCANNERS`); see :func:`thyronet.datasets.make_ptmc_cohort`.
"""

from __future__ import annotations

from dataclasses import dataclass

TABLE1: dict[str, dict] = {
    "train": {
        "n": 265,
        "age": (35.0, 43.0, 52.0),
        "size": (4.7, 6.1, 7.8),
        "aspect_ratio": (0.9, 1.1, 1.3),
        "sex": {"female": 196, "male": 69},
        "location": {"upper": 33, "middle": 146, "lower": 57, "isthmus": 29},
        "ete": {"absent": 226, "present": 39},
        "echogenicity": {"hyper_isoechoic": 11, "hypoechoic": 200, "markedly_hypoechoic": 54},
        "margin": {"clear": 113, "unclear": 152},
        "shape": {"regular": 115, "irregular": 150},
        "vascularity": {"I": 95, "II": 21, "III": 140, "IV": 9},
        "calcification": {"absent": 123, "micro": 100, "coarse": 25, "mixed": 17},
        "capsular_contact": {"absent": 97, "present": 168},
        "discontinuous_capsule": {"absent": 186, "present": 79},
    },
    "validation": {
        "n": 114,
        "age": (35.3, 45.5, 54.0),
        "size": (4.2, 5.6, 7.0),
        "aspect_ratio": (0.9, 1.0, 1.2),
        "sex": {"female": 90, "male": 24},
        "location": {"upper": 15, "middle": 58, "lower": 29, "isthmus": 12},
        "ete": {"absent": 102, "present": 12},
        "echogenicity": {"hyper_isoechoic": 8, "hypoechoic": 75, "markedly_hypoechoic": 31},
        "margin": {"clear": 53, "unclear": 61},
        "shape": {"regular": 47, "irregular": 67},
        "vascularity": {"I": 38, "II": 9, "III": 63, "IV": 4},
        "calcification": {"absent": 58, "micro": 38, "coarse": 13, "mixed": 5},
        "capsular_contact": {"absent": 41, "present": 73},
        "discontinuous_capsule": {"absent": 83, "present": 31},
    },
    "test": {
        "n": 82,
        "age": (34.0, 45.0, 53.0),
        "size": (4.6, 6.0, 7.3),
        "aspect_ratio": (0.9, 1.1, 1.3),
        "sex": {"female": 59, "male": 23},
        "location": {"upper": 22, "middle": 38, "lower": 20, "isthmus": 2},
        "ete": {"absent": 77, "present": 5},
        "echogenicity": {"hyper_isoechoic": 5, "hypoechoic": 59, "markedly_hypoechoic": 18},
        "margin": {"clear": 29, "unclear": 53},
        "shape": {"regular": 24, "irregular": 58},
        "vascularity": {"I": 24, "II": 12, "III": 41, "IV": 5},
        "calcification": {"absent": 41, "micro": 25, "coarse": 10, "mixed": 6},
        "capsular_contact": {"absent": 32, "present": 50},
        "discontinuous_capsule": {"absent": 56, "present": 26},
    },
}
"""Targets per cohort, from the paper's Table 1: (Q1, median, Q3) of the numeric
indicators and the patient counts of every category."""

_TAILS = {  # (min, 5th percentile) and (95th percentile, max) completing Table 1's quartiles
    "age": ((19.0, 26.0), (64.0, 76.0)),
    "size": ((2.0, 3.0), (9.5, 10.0)),
    "aspect_ratio": ((0.55, 0.7), (1.7, 2.2)),
}

RISK_COEFFICIENTS: dict[str, float] = {
    "intercept": -5.3,
    # clinical (the paper's SHAP findings: younger, male, larger, taller-than-wide)
    "age_per_10y_below_43": 0.35,
    "male": 0.60,
    "size_per_mm_above_6": 0.22,
    "aspect_ratio_per_0.2_above_1.1": 0.12,
    # image traits visible in both sections
    "capsular_contact": 0.25,
    "capsule_break": 0.15,
    "ete": 0.40,
    "echo_darkness": 0.25,
    "margin_blur": 0.40,
    "central_microcalcifications": 0.15,
    # visible only in the longitudinal section
    "polar_spiculation": 3.20,
    "calcification_cluster_per_focus": 0.58,
    # visible only in the transverse section
    "lateral_lobulation": 3.00,
    "medial_capsule_contact": 3.00,
}
"""Coefficients of the true risk model (log-odds scale), see :func:`make_ptmc_cohort`."""

TRUTH_COLUMNS: dict[str, tuple[str, ...]] = {
    "shared": (
        "truth_shared_size_mm",
        "truth_shared_aspect_ratio",
        "truth_shared_depth_mm",
        "truth_shared_capsule_gap_mm",
        "truth_shared_capsular_contact",
        "truth_shared_capsule_break",
        "truth_shared_ete",
        "truth_shared_echo",
        "truth_shared_margin_blur",
        "truth_shared_micro_foci",
        "truth_shared_coarse",
    ),
    "longitudinal": (
        "truth_long_length_mm",
        "truth_long_spiculation",
        "truth_long_calc_cluster",
    ),
    "transverse": (
        "truth_trans_width_mm",
        "truth_trans_lobulation",
        "truth_trans_medial_gap_mm",
        "truth_trans_medial_contact",
    ),
}
"""Image-truth columns by where they can be seen: in both sections ("shared"), only in
the longitudinal or only in the transverse one."""


@dataclass(frozen=True)
class ScannerLook:
    """How one centre's scanner renders B-mode images.

    Parameters
    ----------
    lateral_psf_mm, axial_psf_mm : float
        Standard deviations of the Gaussian point-spread function (speckle grain).
    gain : float
        Display level of the mean parenchyma echo, in [0, 1].
    dynamic_range_db : float
        Log-compression window.
    depth_attenuation : float
        Residual attenuation after time-gain compensation, nepers over the frame's depth.
    post_blur_px224 : float
        Display smoothing (Gaussian sigma in pixels of a 224-pixel frame).
    """

    lateral_psf_mm: float
    axial_psf_mm: float
    gain: float
    dynamic_range_db: float
    depth_attenuation: float
    post_blur_px224: float


SCANNERS: dict[str, ScannerLook] = {
    "center_A": ScannerLook(0.11, 0.045, 0.60, 50.0, 0.30, 0.0),
    "center_B": ScannerLook(0.18, 0.08, 0.72, 42.0, 0.65, 0.9),
}
"""Scanner looks: ``center_A`` (training and validation cohorts), ``center_B`` (test cohort)."""

COHORT_CENTER = {"train": "center_A", "validation": "center_A", "test": "center_B"}

_MAX_MICRO = 4  # shared microcalcifications per nodule
_MAX_CLUSTER = 8  # longitudinal-only cluster foci per nodule
_FOV_FACTOR = 1.6  # frame width / maximum nodule diameter
_MIN_FOV_MM = 6.0

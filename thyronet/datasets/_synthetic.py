"""The synthetic PTMC cohort: paired B-mode-like views, a clinical table and a known risk.

:func:`make_ptmc_cohort` is thyronet's embedded default data set. The generative
model is documented in the function's docstring and in ``docs/synthetic-cohort.md``;
the constants below (:data:`TABLE1`, :data:`RISK_COEFFICIENTS`, :data:`SCANNERS`,
:data:`TRUTH_COLUMNS`) are its parameters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import fft as sfft
from scipy import ndimage
from scipy.special import expit, ndtr

from thyronet.schema import (
    CLINICAL_BY_NAME,
    COHORTS,
    VIEW_COLUMNS,
    roi_column,
)

# ---------------------------------------------------------------------------------------------
# Parameters of the generative model
# ---------------------------------------------------------------------------------------------

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
    "intercept": -5.5,
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
    "medial_capsule_contact": 2.30,
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


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def make_ptmc_cohort(
    n_patients: int = 461,
    image_size: int = 224,
    out_dir: str | os.PathLike | None = None,
    random_state: int | np.random.Generator | np.random.RandomState | None = None,
    *,
    return_masks: bool = False,
    overwrite: bool = False,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Generate a synthetic cohort of solitary papillary thyroid microcarcinomas.

    Every patient has one 3-D nodule; its longitudinal and transverse B-mode images
    are two orthogonal sections through the nodule's centre. The clinical table
    follows the paper's Table 1 per cohort, and the label ``clnm`` is drawn from a
    known risk model (``oracle_risk``) in which part of the image signal is visible
    only in the longitudinal section and part only in the transverse one.

    Parameters
    ----------
    n_patients : int, default=461
        Number of patients. They are split into ``train``, ``validation`` and
        ``test`` cohorts in the paper's proportions 265 : 114 : 82.
    image_size : int, default=224
        Side of the square frames in pixels (at least 16).
    out_dir : str or path-like, optional
        When given, the images are written as 8-bit PNG files under
        ``out_dir/images/``, the manifest as ``out_dir/manifest.csv``
        (readable by :func:`thyronet.datasets.load_cohort`), and the view columns
        of the returned frame hold absolute file paths. Images are rendered and
        written in batches, so large cohorts never sit in memory.
        Otherwise the view columns hold float32 arrays in [0, 1].
    random_state : int, numpy Generator or RandomState, optional
        Seed; the same seed gives the same cohort. The clinical table and labels do
        not depend on ``image_size``.
    return_masks : bool, default=False
        Add ``longitudinal_mask`` and ``transverse_mask`` columns with the nodule's
        boolean segmentation (arrays, or PNG paths when ``out_dir`` is given; the
        manifest stores them relative to its folder).
    overwrite : bool, default=False
        Replace an existing manifest and image files in ``out_dir``.
    batch_size : int, default=64
        Images rendered at once (memory/speed trade-off only; the result does not
        depend on it).

    Returns
    -------
    DataFrame
        One row per patient with ``patient_id``, ``longitudinal``, ``transverse``,
        ``longitudinal_roi``, ``transverse_roi`` (``(x0, y0, x1, y1)``, end-exclusive
        pixel boxes of the nodule), the 13 clinical indicators, ``clnm``,
        ``cohort``, ``center``, ``oracle_risk`` (the true probability of CLNM) and the
        image-truth columns listed in :data:`TRUTH_COLUMNS` (prefix ``truth_``).
        ``frame.attrs["truth_columns"]`` repeats that mapping.

    Notes
    -----
    **Geometry.** The nodule is an ellipsoid with diameters ``d_cc`` (cranio-caudal,
    seen only in the longitudinal section), ``d_lat`` (lateral, only transverse) and
    ``d_ap`` (antero-posterior, both). Its maximum diameter ``size`` is at most
    10 mm and the aspect ratio is ``d_ap / d_lat``. The outline in each section is
    the ellipse times a factor <= 1 (so the maximum diameter is kept): a mild random
    lobulation in both, plus

    * longitudinal only: *polar spiculation* -- sharp spicules with deep valleys at
      the cranial and caudal poles (amplitude ``truth_long_spiculation``, 0-1), and a
      *cluster of microcalcifications* off the transverse plane, half-way to a pole
      (``truth_long_calc_cluster`` foci);
    * transverse only: *lateral lobulation* -- rounded lobes on the lateral and
      postero-lateral surface (``truth_trans_lobulation``, 0-1), and *medial capsule
      contact* -- the distance to the lobe's medial (tracheal-side) capsule, drawn at
      the left of every transverse frame (``truth_trans_medial_gap_mm``;
      ``truth_trans_medial_contact = exp(-max(gap, 0) / 0.5 mm)``).

    Shared traits, visible in both sections: the gap to the anterior capsule
    (contact, capsule break, extrathyroidal bulge), nodule echogenicity
    (``truth_shared_echo``, amplitude ratio to parenchyma), margin blur (width of the
    nodule edge) and microcalcifications or a coarse calcification on the
    antero-posterior axis, which lies in both planes.

    **Rendering.** Echo map: parenchyma with smooth texture, striated strap muscle
    above a bright anterior capsule line (interrupted where broken), a posterior
    fascia line, the medial capsule and darker tissue beyond it in transverse frames,
    the hypo-echoic nodule blended in with its margin blur (iso-echoic nodules get a
    dark halo). Speckle: a complex Gaussian scatterer field scaled by the echo map,
    filtered by the scanner's Gaussian point-spread function; its magnitude is a
    Rayleigh-distributed envelope. Microcalcifications are bright point reflectors, a
    coarse calcification a bright arc with a posterior acoustic shadow. Then residual
    depth attenuation, log compression to the scanner's dynamic range, display gain
    and display smoothing. The frame shows 1.6 times the nodule's maximum diameter
    (at least 6 mm) and the nodule sits off-centre; the ROI box is the nodule's
    bounding box.

    **Clinical table.** Latent Gaussian scores, correlated through one
    "aggressiveness" factor (loadings 0.15-0.35), are mapped per cohort onto the
    cohort's Table 1 column: numeric indicators by stratified quantiles (piecewise
    linear between Table 1's quartiles and fixed tails), categories by exact quotas of
    the ranked scores. Age and sex are exact. Indicators read from the image are
    noisy readings of the truth: ``size`` and ``aspect_ratio`` carry measurement
    noise (0.25 mm, 5 %); ``margin`` and ``shape`` threshold a noisy sum of blur,
    spiculation and lobulation; ``calcification``, ``echogenicity`` and the capsule
    findings (``capsular_contact`` ⊇ ``discontinuous_capsule`` ⊇ ``ete``) are the truth
    with 12-15 % of the readings shuffled among patients (which keeps the quotas).
    ``location`` and ``vascularity`` (Doppler, not in B-mode) are clinical only.

    **Risk model.** ``logit(oracle_risk) = intercept + sum(coefficient * term)`` with
    the :data:`RISK_COEFFICIENTS`; terms: ``(43 - age) / 10``, ``male``,
    ``size - 6``, ``(aspect_ratio - 1.1) / 0.2`` (true size and aspect ratio), capsular
    contact, capsule break, ETE, ``(0.6 - echo) / 0.3``, margin blur, number of
    central microcalcifications, ``spiculation``, cluster foci, ``lobulation``,
    medial contact. ``clnm`` is a Bernoulli draw of ``oracle_risk``. The oracle AUC is
    about 0.89, the prevalence about 33 %, and a logistic model seeing one view's
    truth (plus the shared truth and the clinical table) loses 0.06-0.08 AUC against
    one seeing both.

    **Centres.** ``train`` and ``validation`` come from ``center_A``; ``test`` from
    ``center_B``, whose scanner has a coarser speckle grain, lower resolution,
    brighter gain, narrower dynamic range and stronger depth attenuation
    (:data:`SCANNERS`).

    Examples
    --------
    >>> from thyronet.datasets import make_ptmc_cohort
    >>> cohort = make_ptmc_cohort(n_patients=20, image_size=32, random_state=0)
    >>> cohort.shape[0], cohort["longitudinal"].iloc[0].shape
    (20, (32, 32))
    >>> sorted(cohort["cohort"].unique())
    ['test', 'train', 'validation']
    """
    n_patients = _check_int("n_patients", n_patients, 1)
    image_size = _check_int("image_size", image_size, 16)
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _seed_sequence(random_state)
    table_seq, image_seq = seed.spawn(2)

    table, geom = _simulate_table(n_patients, np.random.default_rng(table_seq))
    image_seeds = image_seq.spawn(n_patients)
    looks = [SCANNERS[c] for c in table["center"]]

    writer = None
    if out_dir is not None:
        writer = _Writer(Path(out_dir), table["patient_id"].tolist(), overwrite)

    columns: dict[str, list] = {}
    for view in VIEW_COLUMNS:
        images, rois, masks = [], [], []
        for start in range(0, n_patients, batch_size):
            idx = np.arange(start, min(n_patients, start + batch_size))
            imgs, msks, boxes = _render_view(
                view, geom, idx, image_size, [image_seeds[i] for i in idx], [looks[i] for i in idx]
            )
            rois.extend(boxes)
            if writer is None:
                images.extend(imgs)
                if return_masks:
                    masks.extend(msks)
            else:
                images.extend(writer.write(view, idx, imgs))
                if return_masks:
                    masks.extend(writer.write(f"{view}_mask", idx, msks))
        columns[view] = images
        columns[roi_column(view)] = rois
        if return_masks:
            columns[f"{view}_mask"] = masks

    ordered = {"patient_id": table["patient_id"].tolist()}
    for view in VIEW_COLUMNS:
        ordered[view] = columns[view]
    for view in VIEW_COLUMNS:
        ordered[roi_column(view)] = columns[roi_column(view)]
    frame = pd.DataFrame(ordered)
    frame = pd.concat([frame, table.drop(columns="patient_id")], axis=1)
    if return_masks:
        for view in VIEW_COLUMNS:
            frame[f"{view}_mask"] = columns[f"{view}_mask"]
    frame.attrs["truth_columns"] = {k: list(v) for k, v in TRUTH_COLUMNS.items()}
    if writer is not None:
        writer.save_manifest(frame)
    return frame


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _seed_sequence(random_state) -> np.random.SeedSequence:
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(2**31 - 1)))
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state}")
        return np.random.SeedSequence(int(random_state))
    raise TypeError(
        "random_state must be None, a non-negative int, a numpy Generator or "
        f"RandomState; got {type(random_state).__name__}"
    )


# ---------------------------------------------------------------------------------------------
# The clinical table, the image truth and the risk
# ---------------------------------------------------------------------------------------------


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
    """Clinical table, image truth, risk, label and per-patient rendering parameters."""
    sizes = cohort_sizes(n)
    cohort = np.repeat(np.array(COHORTS, dtype=object), [sizes[c] for c in COHORTS])
    width = max(4, len(str(n)))
    patient_id = [f"ptmc-{i + 1:0{width}d}" for i in range(n)]

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

    age = np.empty(n)
    size = np.empty(n)
    ar = np.empty(n)
    truth_cat: dict[str, np.ndarray] = {}
    for name in ("sex", "location", "vascularity", "echogenicity", "calcification"):
        truth_cat[name] = np.empty(n, dtype=int)
    capsule_level = np.empty(n, dtype=int)  # 0 none, 1 contact, 2 + break, 3 + ETE
    echo = np.empty(n)
    for c in COHORTS:
        sl = cohort == c
        m = int(sl.sum())
        if m == 0:
            continue
        t = TABLE1[c]
        age[sl] = np.round(_quantile_map(u["age"][sl], "age", t["age"], rng))
        size[sl] = _quantile_map(u["size"][sl], "size", t["size"], rng)
        ar[sl] = _quantile_map(u["ar"][sl], "aspect_ratio", t["aspect_ratio"], rng)
        truth_cat["sex"][sl] = _by_rank(u["sex"][sl], _quota(t["sex"], m))
        truth_cat["location"][sl] = _by_rank(u["loc"][sl], _quota(t["location"], m))
        truth_cat["vascularity"][sl] = _by_rank(u["vasc"][sl], _quota(t["vascularity"], m))
        echo_counts = _quota(t["echogenicity"], m)
        truth_cat["echogenicity"][sl] = _by_rank(u["echo"][sl], echo_counts)
        # calcification ranked in order of aggressiveness: absent < coarse < micro < mixed
        calc_counts = _quota(t["calcification"], m)
        order = [0, 2, 1, 3]
        ranked = _by_rank(u["calc"][sl], [calc_counts[k] for k in order])
        truth_cat["calcification"][sl] = np.array(order)[ranked]
        # nested capsule findings: none < contact < contact + break < + ETE
        cc = t["capsular_contact"]["present"]
        dc = t["discontinuous_capsule"]["present"]
        ete = t["ete"]["present"]
        tot = t["n"]
        level_shares = {"none": tot - cc, "cc": cc - dc, "dc": dc - ete, "ete": ete}
        capsule_level[sl] = _by_rank(u["cap"][sl], _quota(level_shares, m))
        # echo amplitude ratio: continuous and monotone in the rank, jumps between grades
        q = np.empty(m)
        q[np.argsort(u["echo"][sl], kind="stable")] = (np.arange(m) + 0.5) / m
        b1 = echo_counts[0] / m
        b2 = (echo_counts[0] + echo_counts[1]) / m
        grade = truth_cat["echogenicity"][sl]
        val = np.where(
            grade == 0,
            1.05 - 0.25 * q / max(b1, 1e-9),
            np.where(
                grade == 1,
                0.5 - 0.16 * (q - b1) / max(b2 - b1, 1e-9),
                0.26 - 0.14 * (q - b2) / max(1 - b2, 1e-9),
            ),
        )
        echo[sl] = val

    male = truth_cat["sex"] == 1

    # --- geometry (mm) ---
    elong = np.clip(np.exp(rng.normal(0.1, 0.18, n)), 0.75, 1.8)
    d_lat = np.ones(n)
    d_ap = ar.copy()
    d_cc = elong * np.maximum(d_lat, d_ap)
    scale = size / np.maximum.reduce([d_cc, d_lat, d_ap])
    d_cc, d_lat, d_ap = d_cc * scale, d_lat * scale, d_ap * scale

    # --- image traits ---
    spic = 0.55 * ndtr(u["spic"]) ** 2  # longitudinal-only polar spiculation amplitude
    lob = 0.55 * ndtr(u["lob"]) ** 2  # transverse-only lateral lobulation amplitude
    blur = ndtr(u["blur"])
    medial_gap = 3.0 * ndtr(-u["med"]) ** 1.5 - 0.25
    medial_contact = np.exp(-np.maximum(medial_gap, 0.0) / 0.5)
    calc = truth_cat["calcification"]
    has_micro = (calc == 1) | (calc == 3)
    has_coarse = (calc == 2) | (calc == 3)
    n_micro = np.where(has_micro, 1 + np.minimum(rng.poisson(0.8, n), _MAX_MICRO - 1), 0)
    lam = np.exp(0.5 + 0.8 * u["clus"])
    n_cluster = np.where(has_micro, np.minimum(rng.poisson(lam), _MAX_CLUSTER), 0)
    contact = capsule_level >= 1
    cap_break = capsule_level >= 2
    ete = capsule_level >= 3
    rank_cap = ndtr(u["cap"])
    capsule_gap = np.where(
        contact,
        np.where(ete, -(0.15 + 0.5 * rng.uniform(size=n)), 0.0),
        0.3 + 2.2 * (1 - rank_cap) ** 1.5,
    )

    # --- risk ---
    b = RISK_COEFFICIENTS
    logit = (
        b["intercept"]
        + b["age_per_10y_below_43"] * (43.0 - age) / 10.0
        + b["male"] * male
        + b["size_per_mm_above_6"] * (size - 6.0)
        + b["aspect_ratio_per_0.2_above_1.1"] * (ar - 1.1) / 0.2
        + b["capsular_contact"] * contact
        + b["capsule_break"] * cap_break
        + b["ete"] * ete
        + b["echo_darkness"] * (0.6 - echo) / 0.3
        + b["margin_blur"] * blur
        + b["central_microcalcifications"] * n_micro
        + b["polar_spiculation"] * spic / 0.55
        + b["calcification_cluster_per_focus"] * n_cluster
        + b["lateral_lobulation"] * lob / 0.55
        + b["medial_capsule_contact"] * medial_contact
    )
    risk = expit(logit)
    clnm = (rng.uniform(size=n) < risk).astype(int)

    # --- clinical readings of the image truth ---
    size_read = np.clip(np.round(size + rng.normal(0, 0.25, n), 1), 1.5, 10.0)
    ar_read = np.round(ar * np.exp(rng.normal(0, 0.05, n)), 2)
    irregular = spic / 0.55 + lob / 0.55
    margin_score = blur + 0.5 * irregular + rng.normal(0, 0.45, n)
    shape_score = 0.6 * irregular + 0.5 * (ar > 1.0) + rng.normal(0, 0.45, n)
    readings = {k: np.empty(n, dtype=int) for k in ("margin", "shape")}
    calc_read = np.empty(n, dtype=int)
    echo_read = np.empty(n, dtype=int)
    cap_read = np.empty(n, dtype=int)
    for c in COHORTS:
        sl = cohort == c
        m = int(sl.sum())
        if m == 0:
            continue
        t = TABLE1[c]
        readings["margin"][sl] = _by_rank(margin_score[sl], _quota(t["margin"], m))
        readings["shape"][sl] = _by_rank(shape_score[sl], _quota(t["shape"], m))
        calc_read[sl] = _shuffle_some(calc[sl], 0.12, rng)
        echo_read[sl] = _shuffle_some(truth_cat["echogenicity"][sl], 0.15, rng)
        cap_read[sl] = _shuffle_some(capsule_level[sl], 0.12, rng)

    def names(var: str, codes: np.ndarray) -> np.ndarray:
        return np.array(CLINICAL_BY_NAME[var].categories, dtype=object)[codes]

    yes_no = np.array(["absent", "present"], dtype=object)
    table = pd.DataFrame(
        {
            "patient_id": patient_id,
            "age": age,
            "sex": names("sex", truth_cat["sex"]),
            "location": names("location", truth_cat["location"]),
            "size": size_read,
            "aspect_ratio": ar_read,
            "ete": yes_no[(cap_read >= 3).astype(int)],
            "echogenicity": names("echogenicity", echo_read),
            "margin": names("margin", readings["margin"]),
            "shape": names("shape", readings["shape"]),
            "vascularity": names("vascularity", truth_cat["vascularity"]),
            "calcification": names("calcification", calc_read),
            "capsular_contact": yes_no[(cap_read >= 1).astype(int)],
            "discontinuous_capsule": yes_no[(cap_read >= 2).astype(int)],
            "clnm": clnm,
            "cohort": cohort,
            "center": [COHORT_CENTER[c] for c in cohort],
            "oracle_risk": risk,
            "truth_shared_size_mm": size,
            "truth_shared_aspect_ratio": ar,
            "truth_shared_depth_mm": d_ap,
            "truth_shared_capsule_gap_mm": capsule_gap,
            "truth_shared_capsular_contact": contact.astype(int),
            "truth_shared_capsule_break": cap_break.astype(int),
            "truth_shared_ete": ete.astype(int),
            "truth_shared_echo": echo,
            "truth_shared_margin_blur": blur,
            "truth_shared_micro_foci": n_micro,
            "truth_shared_coarse": has_coarse.astype(int),
            "truth_long_length_mm": d_cc,
            "truth_long_spiculation": spic / 0.55,
            "truth_long_calc_cluster": n_cluster,
            "truth_trans_width_mm": d_lat,
            "truth_trans_lobulation": lob / 0.55,
            "truth_trans_medial_gap_mm": medial_gap,
            "truth_trans_medial_contact": medial_contact,
        }
    )

    geom = _render_parameters(
        rng,
        n,
        size,
        d_cc,
        d_lat,
        d_ap,
        spic,
        lob,
        blur,
        echo,
        capsule_gap,
        cap_break,
        medial_gap,
        n_micro,
        n_cluster,
        has_coarse,
    )
    return table, geom


def _render_parameters(
    rng,
    n,
    size,
    d_cc,
    d_lat,
    d_ap,
    spic,
    lob,
    blur,
    echo,
    capsule_gap,
    cap_break,
    medial_gap,
    n_micro,
    n_cluster,
    has_coarse,
) -> dict:
    """Per-patient rendering parameters (mm and fractions, independent of the image size)."""
    fov = np.maximum(_FOV_FACTOR * size, _MIN_FOV_MM)
    a_ap = d_ap / 2
    g = {
        "fov": fov,
        "axes": {"longitudinal": (d_cc / 2, a_ap), "transverse": (d_lat / 2, a_ap)},
        "spic": spic,
        "lob": lob,
        "blur": blur,
        "echo": echo,
        "spic_k": rng.integers(7, 11, n).astype(float),
        "spic_phase": rng.uniform(0, 2 * np.pi, n),
        "lob_k": rng.integers(5, 8, n).astype(float),
        "lob_phase": rng.uniform(0, 2 * np.pi, n),
        "capsule_gap": capsule_gap,
        "capsule_break": cap_break,
        "medial_gap": medial_gap,
    }
    # shared low-amplitude irregularity, independent per section
    for view in VIEW_COLUMNS:
        g[f"{view}_harm"] = rng.uniform(0.0, 0.06, (n, 2))
        g[f"{view}_harm_phase"] = rng.uniform(0, 2 * np.pi, (n, 2))
        g[f"{view}_offset_x"] = rng.uniform(-0.75, 0.75, n)
        g[f"{view}_tilt"] = rng.uniform(-0.06, 0.06, n)
        g[f"{view}_break_half"] = rng.uniform(0.35, 0.7, n)
    # depth of the anterior capsule (shared), posterior fascia
    depth_room = fov * 0.94 - 2 * a_ap - capsule_gap
    cap_y = np.minimum(rng.uniform(0.08, 0.2, n) * fov, depth_room)
    g["capsule_y"] = cap_y
    g["center_y"] = cap_y + capsule_gap + a_ap
    g["posterior_gap"] = rng.uniform(0.4, 3.0, n)
    # shared microcalcifications on the antero-posterior axis: (in-plane offset per view, ap)
    ap_pos = rng.uniform(-0.55, 0.55, (n, _MAX_MICRO)) * a_ap[:, None]
    g["micro_valid"] = np.arange(_MAX_MICRO)[None, :] < n_micro[:, None]
    g["micro_ap"] = ap_pos
    g["micro_x"] = {
        "longitudinal": rng.uniform(-0.2, 0.2, (n, _MAX_MICRO)) * (d_cc / 2)[:, None],
        "transverse": rng.uniform(-0.2, 0.2, (n, _MAX_MICRO)) * (d_lat / 2)[:, None],
    }
    g["micro_amp"] = rng.uniform(3.5, 6.0, (n, _MAX_MICRO))
    # longitudinal-only cluster: half-way to a pole, off the transverse plane
    a_cc = d_cc / 2
    side = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
    cx = side * rng.uniform(0.3, 0.5, n) * a_cc
    cy = rng.uniform(-0.3, 0.3, n) * a_ap
    spread = 0.13 * np.minimum(a_cc, a_ap)
    fx = cx[:, None] + rng.normal(0, 1, (n, _MAX_CLUSTER)) * spread[:, None]
    fy = cy[:, None] + rng.normal(0, 1, (n, _MAX_CLUSTER)) * spread[:, None]
    # keep the foci well inside the (spiculated) outline
    theta = np.arctan2(fy, fx)
    r_out = _outline_radius(
        theta, a_cc[:, None], a_ap[:, None], g, "longitudinal", np.arange(n)[:, None]
    )
    rho = np.hypot(fx, fy)
    shrink = np.minimum(1.0, 0.72 * r_out / np.maximum(rho, 1e-9))
    g["cluster_x"], g["cluster_y"] = fx * shrink, fy * shrink
    g["cluster_valid"] = np.arange(_MAX_CLUSTER)[None, :] < n_cluster[:, None]
    g["cluster_amp"] = rng.uniform(3.5, 6.0, (n, _MAX_CLUSTER))
    # coarse calcification on the antero-posterior axis (both sections), with a shadow
    g["coarse"] = has_coarse
    g["coarse_ap"] = rng.uniform(-0.45, 0.1, n) * a_ap
    g["coarse_x"] = {v: rng.uniform(-0.15, 0.15, n) * g["axes"][v][0] for v in VIEW_COLUMNS}
    g["coarse_len"] = rng.uniform(0.35, 0.6, n) * np.minimum(d_cc, d_lat) / 2
    return g


def _outline_radius(theta, ax, ay, g, view, idx):
    """Radius of the nodule outline (mm) at polar angle ``theta`` (y pointing deeper)."""
    dtype = theta.dtype

    def p(a):
        return np.asarray(a, dtype=dtype)

    ax, ay = p(ax), p(ay)
    cos, sin = np.cos(theta), np.sin(theta)
    r = ax * ay / np.sqrt((ay * cos) ** 2 + (ax * sin) ** 2)
    harm = p(g[f"{view}_harm"][idx])
    phase = p(g[f"{view}_harm_phase"][idx])
    m = (
        1
        - harm[..., 0] * 0.5 * (1 + np.cos(2 * theta + phase[..., 0]))
        - harm[..., 1] * 0.5 * (1 + np.cos(3 * theta + phase[..., 1]))
    )
    if view == "longitudinal":
        k, ph, amp = p(g["spic_k"][idx]), p(g["spic_phase"][idx]), p(g["spic"][idx])
        spike = (0.5 * (1 + np.cos(k * theta + ph))) ** 2
        m = m * (1 - amp * cos**2 * (1 - spike) * 1.6)
    else:
        k, ph, amp = p(g["lob_k"][idx]), p(g["lob_phase"][idx]), p(g["lob"][idx])
        lobes = 0.5 * (1 + np.cos(k * theta + ph))
        weight = np.abs(cos) ** 1.2 * (0.75 + 0.25 * sin)
        m = m * (1 - amp * weight * (1 - lobes) * 1.5)
    return r * m


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _smooth_noise(rngs, shape_lo: int, size: int) -> np.ndarray:
    """Smooth random fields with unit variance, one per generator, (B, size, size) float32.

    A ``shape_lo x shape_lo`` grid of Gaussian values interpolated with Gaussian
    radial weights (separable, so it is two small matrix products per image).
    """
    lo = np.stack([r.standard_normal((shape_lo + 2, shape_lo + 2)) for r in rngs])
    centres = (np.arange(shape_lo + 2) - 0.5) * size / shape_lo
    pix = np.arange(size) + 0.5
    w = np.exp(-0.5 * ((pix[:, None] - centres[None, :]) / (0.7 * size / shape_lo)) ** 2)
    w /= np.sqrt((w**2).sum(axis=1, keepdims=True))  # unit variance at every pixel
    return np.einsum("yi,bij,xj->byx", w, lo, w, optimize=True).astype(np.float32)


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def _render_view(view, g, idx, size, seeds, looks):
    """Render one view for the patients ``idx``: images (B,S,S) float32, masks, ROI boxes."""
    bsz = idx.size
    k = VIEW_COLUMNS.index(view)
    rngs = [
        np.random.default_rng(np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, k)))
        for s in seeds
    ]
    col = lambda a: np.asarray(a, dtype=np.float32)[:, None, None]  # noqa: E731

    fov = g["fov"][idx]
    ppm = size / fov  # pixels per mm
    ax, ay = (a[idx] for a in g["axes"][view])
    # nodule centre in mm within the frame
    margin = 0.04 * fov
    room_x = np.maximum(fov / 2 - ax - margin, 0.0)
    cx = fov / 2 + g[f"{view}_offset_x"][idx] * room_x
    cy = g["center_y"][idx]

    coords = (np.arange(size, dtype=np.float32) + 0.5)[None, :]
    xmm = coords / col(ppm)[:, 0]  # (B, S)
    dx = (xmm - col(cx)[:, 0])[:, None, :]  # (B, 1, S)
    ymm = coords / col(ppm)[:, 0]  # (B, S)
    dy = (ymm - col(cy)[:, 0])[:, :, None]  # (B, S, 1)
    theta = np.arctan2(dy, dx)
    rho = np.hypot(dx, dy)
    r_out = _outline_radius(theta, col(ax), col(ay), g, view, idx[:, None, None])
    r_out = r_out.astype(np.float32)

    # edge width in mm: margin blur, never sharper than ~0.6 pixel
    edge = col(np.maximum(0.03 + 0.22 * g["blur"][idx], 0.6 / ppm))
    inside = _sigmoid((r_out - rho) / edge)
    mask = rho <= r_out

    ygrid = ymm[:, :, None]  # (B, S, 1) depth in mm
    xgrid = xmm[:, None, :]  # (B, 1, S)
    px = col(1.0 / ppm)  # one pixel in mm

    # tissue layers
    tex = _smooth_noise(rngs, 6, size)
    echo_map = 1.0 + 0.12 * tex
    tilt = col(g[f"{view}_tilt"][idx])
    cap_line_y = col(g["capsule_y"][idx]) + tilt * (xgrid - col(cx))
    above = _sigmoid((cap_line_y - ygrid) / px)
    phase = col(np.array([r.uniform(0, 2 * np.pi) for r in rngs]))
    stria = 0.1 * (1 + 0.5 * np.sin(2 * np.pi * ygrid / 0.55 + phase + 1.5 * tex))
    echo_map = echo_map * (1 - above) + stria * above
    post_y = col(cy + ay + g["posterior_gap"][idx])
    below = _sigmoid((ygrid - post_y) / px)
    echo_map = echo_map * (1 - below) + 0.15 * (1 + 0.2 * tex) * below
    line_w = np.maximum(0.11, 0.8 * px)
    if view == "transverse":
        gap = g["medial_gap"][idx]
        xb = col(cx - ax - gap) + 0.08 * (ygrid - col(cy)) ** 2 / col(ay)
        beyond = _sigmoid((xb - xgrid) / px)
        echo_map = echo_map * (1 - beyond) + 0.06 * (1 + 0.2 * tex) * beyond
        echo_map = echo_map + 2.5 * np.exp(-(((xgrid - xb) / line_w) ** 2))
        inside = inside * _sigmoid((xgrid - xb) / px)  # the capsule flattens the nodule
        mask = mask & (xgrid > xb)
    # nodule, halo for (near) iso-echoic ones
    nod_echo = col(g["echo"][idx] ** 2) * (1 + 0.15 * _smooth_noise(rngs, 5, size))
    halo = np.exp(-(((rho - r_out) / np.maximum(0.12, 1.2 * px)) ** 2))
    halo_amp = col(np.clip((g["echo"][idx] - 0.7) * 2.0, 0.0, 0.7))
    echo_map = echo_map * (1 - halo_amp * halo)
    echo_map = echo_map * (1 - inside) + nod_echo * inside
    # capsule lines (anterior: interrupted where broken or crossed by the nodule)
    cap_line = np.exp(-(((ygrid - cap_line_y) / line_w) ** 2))
    broken = col(g["capsule_break"][idx]) * (
        np.abs(xgrid - col(cx)) < col(g[f"{view}_break_half"][idx] * ax)
    )
    echo_map = echo_map + 3.0 * cap_line * (1 - broken) * (1 - inside)
    echo_map = echo_map + 1.2 * np.exp(-(((ygrid - post_y) / line_w) ** 2))
    echo_map = np.maximum(echo_map, 0.02).astype(np.float32)

    # speckle: PSF-filtered complex scatterer field -> Rayleigh envelope
    noise = np.stack([r.standard_normal((2, size, size), dtype=np.float32) for r in rngs])
    field = (noise[:, 0] + 1j * noise[:, 1]).astype(np.complex64) * np.sqrt(echo_map / 2)
    sx = np.array([lk.lateral_psf_mm for lk in looks]) * ppm
    sy = np.array([lk.axial_psf_mm for lk in looks]) * ppm
    f = sfft.fftfreq(size).astype(np.float32)
    transfer = np.exp(
        -2 * np.pi**2 * (col(sy**2) * f[None, :, None] ** 2 + col(sx**2) * f[None, None, :] ** 2)
    )
    norm = np.sqrt(np.mean(transfer**2, axis=(1, 2), keepdims=True))
    env = np.abs(sfft.ifft2(sfft.fft2(field, axes=(1, 2)) * transfer, axes=(1, 2))) / norm
    env = env.astype(np.float32)

    # calcifications: bright reflectors (separable Gaussian blobs), coarse ones shadow
    psf_x, psf_y = col(sx)[:, 0], col(sy)[:, 0]

    def blobs(xs_mm, ys_mm, amps, sig_mm_x, sig_mm_y):
        # xs_mm, ys_mm, amps: (B, K) absolute mm; returns (B, S, S) sum of blobs
        sgx = np.sqrt((sig_mm_x * ppm[:, None]) ** 2 + psf_x**2)
        sgy = np.sqrt((sig_mm_y * ppm[:, None]) ** 2 + psf_y**2)
        pxs = xs_mm * ppm[:, None]
        pys = ys_mm * ppm[:, None]
        grid = np.arange(size, dtype=np.float32) + 0.5
        gx = np.exp(-0.5 * ((grid[None, None, :] - pxs[:, :, None]) / sgx[:, :, None]) ** 2)
        gy = np.exp(-0.5 * ((grid[None, None, :] - pys[:, :, None]) / sgy[:, :, None]) ** 2)
        return np.einsum(
            "bky,bkx->byx", (gy * amps[:, :, None]).astype(np.float32), gx.astype(np.float32)
        )

    micro_x = cx[:, None] + g["micro_x"][view][idx]
    micro_y = cy[:, None] + g["micro_ap"][idx]
    amps = g["micro_amp"][idx] * g["micro_valid"][idx]
    xs, ys, am = [micro_x], [micro_y], [amps]
    if view == "longitudinal":
        xs.append(cx[:, None] + g["cluster_x"][idx])
        ys.append(cy[:, None] + g["cluster_y"][idx])
        am.append(g["cluster_amp"][idx] * g["cluster_valid"][idx])
    xs, ys, am = np.concatenate(xs, 1), np.concatenate(ys, 1), np.concatenate(am, 1)
    env = env + blobs(xs, ys, am, 0.06, 0.06)
    coarse = g["coarse"][idx].astype(np.float32)
    if coarse.any():
        ccx = cx + g["coarse_x"][view][idx]
        ccy = cy + g["coarse_ap"][idx]
        half = g["coarse_len"][idx]
        arc = blobs(
            ccx[:, None],
            ccy[:, None],
            (5.0 * coarse)[:, None],
            half[:, None] / 2,
            np.full((bsz, 1), 0.12),
        )
        shadow_x = np.exp(-0.5 * ((xgrid - col(ccx)) / col(half / 1.6)) ** 4)
        shadow = col(coarse) * 0.7 * shadow_x * _sigmoid((ygrid - col(ccy) - 0.1) / px)
        env = env * (1 - shadow) + arc

    # residual depth attenuation, log compression, gain, display smoothing
    att = col([lk.depth_attenuation for lk in looks])
    env = env * np.exp(-att * (ygrid / col(fov)))
    ref = np.sqrt(np.pi) / 2  # mean Rayleigh envelope of unit-power parenchyma
    db = 20 * np.log10(np.maximum(env / ref, 1e-6))
    img = col([lk.gain for lk in looks]) + db / col([lk.dynamic_range_db for lk in looks])
    blur_px = np.array([lk.post_blur_px224 for lk in looks]) * size / 224
    if np.any(blur_px > 0):
        for b in np.unique(blur_px[blur_px > 0]):
            sel = blur_px == b
            img[sel] = ndimage.gaussian_filter(img[sel], sigma=(0, b, b), mode="reflect")
    img = np.clip(img, 0.0, 1.0).astype(np.float32)

    boxes = []
    for m in mask:
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        if rows.size == 0:  # nodule smaller than a pixel: box the centre pixel
            c = size // 2
            boxes.append((c, c, c + 1, c + 1))
        else:
            boxes.append((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))
    return list(img), list(mask), boxes


# ---------------------------------------------------------------------------------------------
# Writing to disk
# ---------------------------------------------------------------------------------------------


class _Writer:
    """Writes PNG files under ``root/images`` and the manifest ``root/manifest.csv``."""

    def __init__(self, root: Path, patient_ids: list[str], overwrite: bool):
        self.root = root.expanduser().resolve()
        self.images = self.root / "images"
        self.manifest = self.root / "manifest.csv"
        self.ids = patient_ids
        self.overwrite = overwrite
        if self.manifest.exists() and not overwrite:
            raise FileExistsError(
                f"{str(self.manifest)!r} already exists; pass overwrite=True to replace it"
            )
        self.images.mkdir(parents=True, exist_ok=True)

    def write(self, kind: str, idx, arrays) -> list[str]:
        from PIL import Image

        paths = []
        for i, arr in zip(idx, arrays, strict=True):
            target = self.images / f"{self.ids[i]}_{kind}.png"
            if target.exists() and not self.overwrite:
                raise FileExistsError(
                    f"image file {str(target)!r} already exists; pass overwrite=True to replace it"
                )
            if arr.dtype == bool:
                data = arr.astype(np.uint8) * 255
            else:
                data = np.round(arr * 255).astype(np.uint8)
            Image.fromarray(data).save(target, compress_level=1)
            paths.append(str(target))
        return paths

    def save_manifest(self, frame: pd.DataFrame) -> None:
        from thyronet.datasets._cohort import save_cohort

        out = frame.copy()
        for view in VIEW_COLUMNS:  # masks are not views: store them relative by hand
            mask_col = f"{view}_mask"
            if mask_col in out.columns:
                out[mask_col] = [str(Path(p).relative_to(self.root)) for p in out[mask_col]]
        save_cohort(out, self.manifest, overwrite=self.overwrite)

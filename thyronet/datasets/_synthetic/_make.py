"""The synthetic PTMC cohort: paired B-mode-like views, a clinical table and a known risk.

:func:`make_ptmc_cohort` is thyronet's embedded default data set: it draws the table
(:mod:`._table`), renders both views in batches (:mod:`._render`) and writes them to
disk when asked.
"""

from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd

from thyronet.datasets._cohort import save_cohort
from thyronet.datasets._io import write_png
from thyronet.datasets._synthetic._params import SCANNERS, TRUTH_COLUMNS
from thyronet.datasets._synthetic._render import render_view
from thyronet.datasets._synthetic._table import _simulate_table
from thyronet.schema import VIEW_COLUMNS, roi_column


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
    the core ellipse (whose diameters are ``size`` and the truth columns) times a
    mild random lobulation in both, plus zero-mean outline modulations that change
    the shape, not the area:

    * longitudinal only: *polar spiculation* -- thin spicules radiating from the
      cranial and caudal poles (up to 40 % beyond the core; amplitude
      ``truth_long_spiculation``, 0-1), and a *cluster of microcalcifications* off
      the transverse plane, half-way to a pole (``truth_long_calc_cluster`` foci);
    * transverse only: *lateral lobulation* -- lobes and notches on the lateral and
      postero-lateral surface (``truth_trans_lobulation``, 0-1), and *medial capsule
      contact* -- the medial (tracheal-side) capsule, drawn at the left of every
      transverse frame, flattens a nodule that abuts it
      (``truth_trans_medial_gap_mm`` < 0); ``truth_trans_medial_contact`` is the
      share of the nodule's depth lying on the capsule (0 when not touching), so the
      evidence lies on the nodule's border, inside the tight ROI box.

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
            imgs, msks, boxes = render_view(
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
        return [
            str(
                write_png(
                    self.images / f"{self.ids[i]}_{kind}.png",
                    arr,
                    overwrite=self.overwrite,
                    compress_level=1,
                )
            )
            for i, arr in zip(idx, arrays, strict=True)
        ]

    def save_manifest(self, frame: pd.DataFrame) -> None:
        out = frame.copy()
        for view in VIEW_COLUMNS:  # masks are not views: store them relative by hand
            mask_col = f"{view}_mask"
            if mask_col in out.columns:
                out[mask_col] = [str(Path(p).relative_to(self.root)) for p in out[mask_col]]
        save_cohort(out, self.manifest, overwrite=self.overwrite)

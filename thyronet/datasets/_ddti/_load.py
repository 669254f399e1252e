"""The DDTI entry point, :func:`load_ddti`: read, analyse and build one row per case."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from thyronet.datasets._ddti._build import (
    DDTIReport,
    _case_columns,
    _case_row,
    _columns,
    _make_report,
    _write,
)
from thyronet.datasets._ddti._parse import (
    _ERRORS,
    _SINGLE_VIEW,
    LABELS,
    DDTIError,
    DDTIWarning,
    _analyse,
    _collect_images,
    _drop_duplicates,
    _patient_id,
    _read_cases,
)

__all__ = ["load_ddti"]


def load_ddti(
    root: str | os.PathLike,
    label: str | Callable[[Mapping[str, str]], float] | None = "tirads_binary",
    *,
    single_view: str = "drop",
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    errors: str = "warn",
    return_report: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, DDTIReport]:
    """Read the DDTI database into a cohort frame, one row per case with paired views.

    Parameters
    ----------
    root : str or path-like
        Folder holding ``xml/<case>.xml`` and ``images/<case>_<k>.jpg``
        (images may also sit in sub-folders of ``images/``, as in some mirrors).
    label : {"tirads_binary"}, callable or None
        ``"tirads_binary"``: column ``label`` is 1 for TI-RADS 4a-5, 0 for 2-3
        and NaN without TI-RADS. This is a *proxy* (a radiologist's risk
        category, not pathology). A callable receives the case's fields
        (``dict`` of normalised strings: ``age``, ``sex``, ``tirads``,
        ``reporteco``, ...) and returns 0, 1 or NaN. ``None``: no ``label``
        column.
    single_view : {"drop", "keep"}
        Cases without a usable pair are left out (and listed in the report), or
        kept with one view filled: the outlined half of a dual-panel frame, or
        else the first single-panel frame with an outline. The lone view goes
        in ``longitudinal`` when its outline is at least
        ``SINGLE_VIEW_ELONGATION`` (1.3) times wider than tall, otherwise in
        ``transverse``; the other view and its ROI are missing (None/NaN).
    out_dir : str or path-like, optional
        Write the views as 8-bit PNG files under ``out_dir/images/`` and the
        manifest ``out_dir/manifest.csv`` (with
        :func:`thyronet.datasets.save_cohort`); the returned frame then holds
        absolute file paths, and ``load_cohort(out_dir / "manifest.csv",
        clinical=False, label=False)`` reads it back.
    overwrite : bool
        Replace files already in ``out_dir``.
    errors : {"warn", "raise"}
        A malformed XML file or an unreadable image: skip it with a
        :class:`DDTIWarning` naming the file, or raise ``DDTIError``.
    return_report : bool
        Also return a :class:`DDTIReport` listing dropped duplicates, excluded
        cases (with reasons) and what happened to every image.

    Returns
    -------
    cohort : DataFrame
        One row per case, sorted by case number, with columns

        - ``patient_id`` (``"ddti-058"``), ``case_id`` (58), ``image``
          (source file name, ``"58_1.jpg"``), ``center`` (``"ddti"``);
        - ``longitudinal``, ``transverse``: 2-D float32 arrays in [0, 1] (the
          frame's halves, luminance as Pillow's ``"L"`` mode), or file paths
          with ``out_dir``;
        - ``longitudinal_roi``, ``transverse_roi``: ``(x0, y0, x1, y1)`` int
          tuples in that half's pixels, ``x1``/``y1`` exclusive: the bounding
          box of the half's nodule polygon;
        - ``longitudinal_panel``, ``transverse_panel`` (``"left"``,
          ``"right"``, or ``"full"`` for a lone single-panel frame),
          ``seam_x`` (first column of the right half in the source frame),
          ``view_assignment`` (``"elongation"``, ``"fallback: wider"`` or
          ``"single"``);
        - ``age`` (float), ``sex`` (``"female"``/``"male"``; missing for ``u``),
          ``composition``, ``echogenicity``, ``margins``, ``calcifications``
          (DDTI's own vocabulary, normalised: ``"ill- defined"`` ->
          ``"ill defined"``, singular -> plural), ``tirads``, ``reporteco``;
        - ``nodule_size_px``: largest distance between two outline points, over
          both views (pixels; DDTI has no pixel spacing);
          ``aspect_ratio``: height / width of the transverse outline (the
          anteroposterior / transverse diameter; NaN without a transverse view);
        - ``label`` (float 0/1/NaN) unless ``label=None``.
    report : DDTIReport
        Only with ``return_report=True``.

    Raises
    ------
    FileNotFoundError
        ``root``, ``root/xml`` or ``root/images`` is missing.
    DDTIError
        With ``errors="raise"``, on the first malformed XML or unreadable image.

    Notes
    -----
    **Which half is which.** DDTI does not record the plane. In a transverse
    section the nodule is round (or taller than wide) and sits beside the
    carotid artery or the trachea; in a longitudinal section it is stretched
    along the neck, i.e. wider than tall. So the half whose outline has the
    larger width / height ratio (bounding box) is the longitudinal view
    (``view_assignment="elongation"``). When the two ratios differ by less than
    ``TIE_RATIO`` (10 %), the half with the wider outline (in pixels) is the
    longitudinal one (``"fallback: wider"``), since a nodule's craniocaudal
    extent is usually its largest. On the shared copy the side chosen this way
    varies within each screen layout (it is not a fixed left/right
    convention). Checked by eye on 48 pairs: in the 17 where a round vessel
    (carotid, jugular) lies beside the nodule in one half only, the rule
    called that half transverse in 16 (see ``docs/ddti.md``).

    **Pairs.** A case has a usable pair when one of its (non-duplicate) frames
    is dual-panel with a nodule outline in each half; of several such frames
    the first (lowest image number) is used. Two separate single-panel frames of
    one case are never paired, as their planes are unknown.

    Burned-in text (lobe side, calipers, sometimes the TI-RADS itself) remains
    in the images; crop to the ROI or mask before training on the label.

    Examples
    --------
    >>> import os
    >>> from thyronet.datasets import load_ddti
    >>> root = os.environ.get("THYRONET_DDTI_ROOT", "../shared/data/ddti")
    >>> if os.path.isdir(root):  # the DDTI copy is not shipped with thyronet
    ...     cohort = load_ddti(root)
    ...     print(cohort["label"].notna().sum() >= 60)
    ... else:
    ...     print(True)
    True
    """
    if single_view not in _SINGLE_VIEW:
        raise ValueError(f"single_view must be one of {list(_SINGLE_VIEW)}, got {single_view!r}")
    if errors not in _ERRORS:
        raise ValueError(f"errors must be one of {list(_ERRORS)}, got {errors!r}")
    if not (label is None or callable(label) or label in LABELS):
        raise ValueError(f"label must be one of {list(LABELS)}, a callable or None; got {label!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"DDTI root folder {str(root)!r} does not exist")
    xml_dir, image_dir = root / "xml", root / "images"
    for sub in (xml_dir, image_dir):
        if not sub.is_dir():
            raise FileNotFoundError(
                f"DDTI root {str(root)!r} has no {sub.name}/ folder ({str(sub)!r} is missing); "
                "expected xml/<case>.xml and images/<case>_<k>.jpg"
            )

    def problem(message: str) -> None:
        if errors == "raise":
            raise DDTIError(message)
        warnings.warn(message, DDTIWarning, stacklevel=2)

    cases, excluded = _read_cases(xml_dir, problem)
    images = _collect_images(cases, image_dir, problem)
    duplicates = _drop_duplicates(images)
    for img in images:
        if img.layout == "pending":
            _analyse(img, cases[img.case_id].marks.get(img.index, []), problem)

    rows = []
    for case_id in sorted(cases):
        case = cases[case_id]
        own = sorted(
            (i for i in images if i.case_id == case_id and i.layout != "no xml"),
            key=lambda i: i.index,
        )
        row, reason, detail = _case_row(case, own, single_view)
        if row is None:
            excluded.append(
                {
                    "case_id": case_id,
                    "patient_id": _patient_id(case_id),
                    "reason": reason,
                    "detail": detail,
                }
            )
            continue
        row.update(_case_columns(case, label, problem))
        rows.append(row)

    frame = pd.DataFrame(rows, columns=_columns(label))
    report = _make_report(cases, images, duplicates, excluded, frame)
    if out_dir is not None:
        frame = _write(frame, Path(out_dir), overwrite)
    return (frame, report) if return_report else frame

"""DDTI, a public thyroid ultrasound database, read into the cohort schema.

DDTI (Pedraza et al., Proc. SPIE 9287, 2015) has one XML file per case
(``xml/<case>.xml``: age, sex, composition, echogenicity, margins,
calcifications, TI-RADS and one nodule outline per image) and its images
(``images/<case>_<k>.jpg``). Many of its frames are *dual-panel*: the scanner's
split screen shows two B-mode views of the nodule side by side. :func:`load_ddti`
finds the seam of such frames from the pixels, splits them into two views,
decides which view is longitudinal and which transverse from the nodule
outlines, and returns one row per case in the cohort schema.

How each step works (the constants below are the knobs):

- **Exact duplicates.** The md5 of every image file's bytes is computed; of a
  group of identical files the first in (case number, image number) order is
  kept and the others are dropped before anything else happens.
- **Seam.** Within the central band of the frame (``SEAM_BAND``) the column
  boundary with the strongest jump between neighbouring columns, relative to
  the typical jump around it, is the candidate seam. The frame is dual-panel
  when that ratio is at least ``SEAM_MIN_SCORE``. On the shared DDTI copy the
  ratio is >= 2.34 on every split-screen frame and <= 1.60 on every other
  frame, and the seam falls between columns 279|280 (129 frames), 314|315
  (21), 276|277 (2) or 282|283 (1).
- **Polygons.** Each polygon belongs to the half holding its x-range; outlines
  that overshoot the seam by at most ``SEAM_TOLERANCE`` pixels (the annotators'
  freehand strokes do, in six frames) are clamped to their half. A polygon
  reaching further across makes the frame unusable as a pair. When a half has
  several polygons the largest (by area) is the nodule.
- **ROI.** ``(x0, y0, x1, y1)`` with ``x1``/``y1`` exclusive, so
  ``image[y0:y1, x0:x1]`` is the polygon's bounding box, in the half's pixel
  coordinates.
- **Views.** See :func:`load_ddti`, "Which half is which".
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DDTIReport", "DDTIWarning", "load_ddti"]

SEAM_BAND: tuple[float, float] = (0.35, 0.65)
"""Fraction of the frame width searched for the seam of a dual-panel frame."""

SEAM_MIN_SCORE: float = 2.0
"""Minimum seam score (jump across the seam / median jump nearby) of a dual-panel frame."""

SEAM_TOLERANCE: int = 3
"""Pixels an outline may overshoot the seam; such points are clamped to their half."""

TIE_RATIO: float = 1.10
"""Elongation ratio (larger / smaller) below which the shape rule is a tie."""

SINGLE_VIEW_ELONGATION: float = 1.30
"""A lone view (``single_view="keep"``) whose outline is at least this much wider
than tall is filed as longitudinal, otherwise as transverse."""

CENTER = "ddti"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
TIRADS_BENIGN = ("2", "3")
TIRADS_MALIGNANT = ("4a", "4b", "4c", "5")
TIRADS_VALUES = TIRADS_BENIGN + TIRADS_MALIGNANT
LABELS = ("tirads_binary",)
CASE_FIELDS = (
    "age",
    "sex",
    "composition",
    "echogenicity",
    "margins",
    "calcifications",
    "tirads",
    "reportbacaf",
    "reporteco",
)
_SEX = {"f": "female", "m": "male"}
_SINGLE_VIEW = ("drop", "keep")
_ERRORS = ("warn", "raise")


class DDTIWarning(UserWarning):
    """A DDTI file that cannot be used (malformed XML, unreadable image); it is skipped."""


class DDTIError(ValueError):
    """A DDTI file that cannot be used, with ``errors="raise"``."""


@dataclass(eq=False)
class DDTIReport:
    """What :func:`load_ddti` did with every case and image.

    Attributes
    ----------
    images : DataFrame
        One row per image referenced by an XML file or found under ``images/``:
        ``case_id``, ``image``, ``md5``, ``layout`` (``"dual"``, ``"single"``,
        ``"missing"``, ``"unreadable"``, ``"duplicate"``, ``"no xml"``),
        ``seam_x``, ``seam_score``, ``n_polygons``, ``status`` (``"paired"``,
        ``"single view"`` or why it was not used).
    excluded : DataFrame
        One row per case left out: ``case_id``, ``patient_id``, ``reason``
        (short category) and ``detail`` (per image).
    duplicates : DataFrame
        One row per dropped exact duplicate: ``image``, ``case_id``,
        ``duplicate_of``, ``md5``.
    n_cases : int
        Case XML files read (malformed ones included).
    """

    images: pd.DataFrame
    excluded: pd.DataFrame
    duplicates: pd.DataFrame
    n_cases: int = 0
    counts: dict = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"DDTI: {self.n_cases} case XML files"]
        lines += [f"  {k}: {v}" for k, v in self.counts.items()]
        if len(self.duplicates):
            pairs = ", ".join(
                f"{a} = {b}"
                for a, b in zip(
                    self.duplicates["image"], self.duplicates["duplicate_of"], strict=True
                )
            )
            lines.append(f"  dropped duplicates: {pairs}")
        if len(self.excluded):
            for reason, n in self.excluded["reason"].value_counts().items():
                lines.append(f"  excluded ({reason}): {n}")
        return "\n".join(lines)


@dataclass
class _Case:
    case_id: int
    xml: Path
    fields: dict[str, str]
    marks: dict[int, list[np.ndarray]]  # image number -> polygons (m, 2) float (x, y)


@dataclass
class _Image:
    case_id: int
    index: int
    name: str
    path: Path | None
    md5: str = ""
    layout: str = "missing"
    seam: int | None = None
    score: float = math.nan
    gray: np.ndarray | None = None  # uint8 (H, W)
    left: list[np.ndarray] = field(default_factory=list)
    right: list[np.ndarray] = field(default_factory=list)
    full: list[np.ndarray] = field(default_factory=list)
    n_polygons: int = 0
    problem: str = ""
    status: str = ""


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


# --------------------------------------------------------------------------- reading


def _read_cases(xml_dir: Path, problem) -> tuple[dict[int, _Case], list[dict]]:
    cases: dict[int, _Case] = {}
    excluded: list[dict] = []
    for path in sorted(xml_dir.glob("*.xml"), key=_natural):
        if not path.stem.isdigit():
            problem(f"DDTI XML file {str(path)!r}: name is not <case number>.xml; skipped")
            continue
        case_id = int(path.stem)
        try:
            cases[case_id] = _parse_case(path, case_id)
        except DDTIError as exc:
            problem(str(exc))
            excluded.append(
                {
                    "case_id": case_id,
                    "patient_id": _patient_id(case_id),
                    "reason": "malformed XML",
                    "detail": str(exc),
                }
            )
    return cases, excluded


def _parse_case(path: Path, case_id: int) -> _Case:
    where = f"DDTI XML file {str(path)!r}"
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DDTIError(f"{where} is malformed: {exc}; case skipped") from None
    if root.tag != "case":
        raise DDTIError(f"{where}: root element is <{root.tag}>, expected <case>; case skipped")
    number = (root.findtext("number") or "").strip()
    if number and number != str(case_id):
        raise DDTIError(
            f"{where}: <number>{number}</number> does not match the file name; case skipped"
        )
    fields = {name: " ".join((root.findtext(name) or "").split()) for name in CASE_FIELDS}
    marks: dict[int, list[np.ndarray]] = {}
    for n, mark in enumerate(root.findall("mark"), start=1):
        index_text = (mark.findtext("image") or "").strip()
        if not index_text.isdigit():
            raise DDTIError(
                f"{where}: <mark> #{n} has <image>{index_text}</image>, "
                "expected an image number; case skipped"
            )
        index = int(index_text)
        if index in marks:
            raise DDTIError(f"{where}: image {index} has two <mark> elements; case skipped")
        marks[index] = _parse_svg(mark.findtext("svg") or "", f"{where}, image {index}")
    return _Case(case_id, path, fields, marks)


def _parse_svg(text: str, where: str) -> list[np.ndarray]:
    text = text.strip()
    if not text:
        return []
    try:
        shapes = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DDTIError(f"{where}: <svg> is not valid JSON ({exc}); case skipped") from None
    if not isinstance(shapes, list):
        raise DDTIError(f"{where}: <svg> must be a JSON list of polygons; case skipped")
    polygons = []
    for k, shape in enumerate(shapes):
        points = shape.get("points") if isinstance(shape, dict) else None
        try:
            xy = np.array([[float(p["x"]), float(p["y"])] for p in points], dtype=float)
        except (TypeError, KeyError, ValueError):
            raise DDTIError(
                f"{where}: polygon {k} has no list of points with numeric x and y; case skipped"
            ) from None
        if not np.all(np.isfinite(xy)):
            raise DDTIError(f"{where}: polygon {k} has non-finite coordinates; case skipped")
        if len(xy) >= 3 and np.ptp(xy[:, 0]) > 0 and np.ptp(xy[:, 1]) > 0:
            polygons.append(xy)  # degenerate outlines (points, lines) are ignored
    return polygons


def _collect_images(cases: dict[int, _Case], image_dir: Path, problem) -> list[_Image]:
    found: dict[str, Path] = {}
    for path in sorted(image_dir.rglob("*"), key=_natural):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                problem(
                    f"DDTI image {path.stem!r} exists twice: {str(found[path.stem])!r} and "
                    f"{str(path)!r}; using the first"
                )
                continue
            found[path.stem] = path
    images = []
    used = set()
    for case_id in sorted(cases):
        for index in sorted(cases[case_id].marks):
            stem = f"{case_id}_{index}"
            path = found.get(stem)
            used.add(stem)
            name = path.name if path is not None else f"{stem}.jpg"
            images.append(
                _Image(
                    case_id, index, name, path, layout="pending" if path is not None else "missing"
                )
            )
    for stem, path in found.items():
        if stem not in used:
            match = re.fullmatch(r"(\d+)_(\d+)", stem)
            case_id = int(match.group(1)) if match else -1
            index = int(match.group(2)) if match else -1
            images.append(
                _Image(
                    case_id,
                    index,
                    path.name,
                    path,
                    layout="no xml",
                    status="no <mark> in an XML file; not used",
                )
            )
    for img in images:
        if img.path is not None and img.layout == "pending":
            img.md5 = hashlib.md5(img.path.read_bytes()).hexdigest()
    return images


def _drop_duplicates(images: list[_Image]) -> list[dict]:
    first: dict[str, _Image] = {}
    dropped = []
    for img in sorted(images, key=lambda i: (i.case_id, i.index)):
        if img.layout != "pending":
            continue
        if img.md5 in first:
            keep = first[img.md5]
            img.layout = "duplicate"
            img.status = f"exact duplicate of {keep.name}; dropped"
            dropped.append(
                {
                    "image": img.name,
                    "case_id": img.case_id,
                    "duplicate_of": keep.name,
                    "md5": img.md5,
                }
            )
        else:
            first[img.md5] = img
    return dropped


def _analyse(img: _Image, polygons: list[np.ndarray], problem) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(img.path) as pil:
            gray = np.asarray(pil.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        img.layout = "unreadable"
        img.status = f"unreadable image: {exc}"
        problem(f"DDTI image file {str(img.path)!r} is corrupt or unreadable ({exc}); skipped")
        return
    img.gray = gray
    img.n_polygons = len(polygons)
    seam, score = find_seam(gray)
    img.score = score
    height, width = gray.shape
    if score < SEAM_MIN_SCORE:
        img.layout = "single"
        img.full = [_clamp(p, 0, width, height) for p in polygons]
        return
    img.layout, img.seam = "dual", seam
    for poly in polygons:
        x_min, x_max = poly[:, 0].min(), poly[:, 0].max()
        if x_max < seam + SEAM_TOLERANCE:
            img.left.append(_clamp(poly, 0, seam, height))
        elif x_min >= seam - SEAM_TOLERANCE:
            img.right.append(_clamp(poly - [seam, 0], 0, width - seam, height))
        else:
            img.problem = f"an outline spans the seam at x={seam} (x from {x_min:g} to {x_max:g})"


def find_seam(gray: np.ndarray) -> tuple[int, float]:
    """Locate the seam of a dual-panel frame.

    Returns ``(x, score)``: ``x`` is the first column of the right panel and
    ``score`` the mean absolute jump between columns ``x - 1`` and ``x`` divided
    by the median jump of the 9 column boundaries around it (+1). Only the
    central band ``SEAM_BAND`` of the width is searched, and the top and bottom
    11 % of rows (text, scale bars) are ignored.
    """
    from scipy.ndimage import median_filter

    data = np.asarray(gray, dtype=float)
    height, width = data.shape
    margin = round(0.11 * height)
    body = data[margin : height - margin] if height - 2 * margin >= 8 else data
    jump = np.abs(np.diff(body, axis=1)).mean(axis=0)
    ratio = jump / (median_filter(jump, size=9, mode="nearest") + 1.0)
    lo = max(1, int(SEAM_BAND[0] * width))
    hi = min(width - 2, int(SEAM_BAND[1] * width))
    if hi <= lo:
        return width // 2, 0.0
    k = lo + int(np.argmax(ratio[lo:hi]))
    return k + 1, float(ratio[k])


def _clamp(poly: np.ndarray, x_min: float, x_max: float, height: float) -> np.ndarray:
    """Clamp an outline to the pixel grid ``[x_min, x_max) x [0, height)``."""
    out = poly.copy()
    out[:, 0] = np.clip(out[:, 0], x_min, x_max - 1)
    out[:, 1] = np.clip(out[:, 1], 0, height - 1)
    return out


# --------------------------------------------------------------------------- one case


def _case_row(case: _Case, own: list[_Image], single_view: str):
    """Pick the pair (or lone view) of one case; return (row, reason, detail)."""
    notes = []
    for img in own:
        if img.status:
            notes.append(f"{img.name}: {img.status}")
            continue
        if img.layout == "missing":
            img.status = "image file missing"
        elif img.layout == "dual" and img.problem:
            img.status = img.problem
        elif img.layout == "dual" and img.left and img.right:
            img.status = "usable pair"
        elif img.layout == "dual" and (img.left or img.right):
            side = "left" if img.left else "right"
            img.status = f"dual-panel; nodule outlined in the {side} half only"
        elif img.layout == "dual":
            img.status = "dual-panel; no nodule outline"
        elif img.layout == "single" and img.full:
            img.status = "single-panel frame"
        elif img.layout == "single":
            img.status = "single-panel frame without nodule outline"
        notes.append(f"{img.name}: {img.status}")

    pair = next((i for i in own if i.status == "usable pair"), None)
    if pair is not None:
        for img in own:
            if img is not pair and img.layout not in ("duplicate", "unreadable"):
                img.status = f"{img.status}; not used (case paired from {pair.name})"
        pair.status = "paired"
        return _pair_row(case, pair), "", ""

    detail = "; ".join(notes) if notes else "no <mark> elements"
    reason = _reason(own)
    if single_view == "keep":
        lone = next(
            (
                i
                for i in own
                if i.layout in ("dual", "single")
                and not i.problem
                and (i.left or i.right or i.full)
            ),
            None,
        )
        if lone is not None:
            for img in own:
                if img is not lone and img.layout not in ("duplicate", "unreadable"):
                    img.status = f"{img.status}; not used"
            lone.status = "single view"
            return _single_row(case, lone), "", ""
    return None, reason, detail


def _reason(own: list[_Image]) -> str:
    live = [i for i in own if i.layout in ("dual", "single")]
    if not own:
        return "no images"
    if not live:
        kinds = {i.layout for i in own}
        if kinds == {"duplicate"}:
            return "only duplicate images"
        if kinds <= {"missing"}:
            return "image files missing"
        return "no readable non-duplicate image"
    duals = [i for i in live if i.layout == "dual"]
    if not duals:
        return "no dual-panel frame"
    if any(i.problem for i in duals):
        return "outline spans the seam"
    if any(i.left or i.right for i in duals):
        return "nodule outlined in one half only"
    return "dual-panel frame without outlines"


def _largest(polygons: list[np.ndarray]) -> np.ndarray:
    return max(polygons, key=_area)


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _roi(poly: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0 = (math.floor(v) for v in poly.min(axis=0))
    x1, y1 = (math.floor(v) + 1 for v in poly.max(axis=0))
    return x0, y0, x1, y1


def _extent(poly: np.ndarray) -> tuple[float, float]:
    width, height = np.ptp(poly, axis=0)
    return float(width), float(height)


def _elongation(poly: np.ndarray) -> float:
    width, height = _extent(poly)
    return width / height


def _feret(poly: np.ndarray) -> float:
    diff = poly[:, None, :] - poly[None, :, :]
    return float(np.sqrt((diff**2).sum(axis=-1)).max())


def _as_float(gray: np.ndarray) -> np.ndarray:
    return (gray.astype(np.float32) / np.float32(255.0)).astype(np.float32)


def _pair_row(case: _Case, img: _Image) -> dict:
    left, right = _largest(img.left), _largest(img.right)
    e_left, e_right = _elongation(left), _elongation(right)
    if max(e_left, e_right) >= TIE_RATIO * min(e_left, e_right):
        left_is_long, rule = e_left > e_right, "elongation"
    else:
        left_is_long, rule = _extent(left)[0] >= _extent(right)[0], "fallback: wider"
    halves = {"left": (img.gray[:, : img.seam], left), "right": (img.gray[:, img.seam :], right)}
    long_side, trans_side = ("left", "right") if left_is_long else ("right", "left")
    (long_img, long_poly), (trans_img, trans_poly) = halves[long_side], halves[trans_side]
    width, height = _extent(trans_poly)
    return {
        "patient_id": _patient_id(case.case_id),
        "case_id": case.case_id,
        "image": img.name,
        "longitudinal": _as_float(long_img),
        "transverse": _as_float(trans_img),
        "longitudinal_roi": _roi(long_poly),
        "transverse_roi": _roi(trans_poly),
        "longitudinal_panel": long_side,
        "transverse_panel": trans_side,
        "seam_x": img.seam,
        "view_assignment": rule,
        "nodule_size_px": max(_feret(long_poly), _feret(trans_poly)),
        "aspect_ratio": height / width,
    }


def _single_row(case: _Case, img: _Image) -> dict:
    if img.layout == "dual":
        side = "left" if img.left else "right"
        poly = _largest(img.left or img.right)
        gray = img.gray[:, : img.seam] if side == "left" else img.gray[:, img.seam :]
        seam = img.seam
    else:
        side, poly, gray, seam = "full", _largest(img.full), img.gray, None
    view = "longitudinal" if _elongation(poly) >= SINGLE_VIEW_ELONGATION else "transverse"
    other = "transverse" if view == "longitudinal" else "longitudinal"
    width, height = _extent(poly)
    return {
        "patient_id": _patient_id(case.case_id),
        "case_id": case.case_id,
        "image": img.name,
        view: _as_float(gray),
        other: None,
        f"{view}_roi": _roi(poly),
        f"{other}_roi": None,
        f"{view}_panel": side,
        f"{other}_panel": None,
        "seam_x": seam,
        "view_assignment": "single",
        "nodule_size_px": _feret(poly),
        "aspect_ratio": height / width if view == "transverse" else math.nan,
    }


def _case_columns(case: _Case, label, problem) -> dict:
    f = case.fields
    where = f"DDTI XML file {str(case.xml)!r}"
    try:
        age = float(f["age"]) if f["age"] else math.nan
    except ValueError:
        problem(f"{where}: <age>{f['age']}</age> is not a number; age set to NaN")
        age = math.nan
    tirads = f["tirads"].lower() or None
    if tirads is not None and tirads not in TIRADS_VALUES:
        problem(
            f"{where}: <tirads>{f['tirads']}</tirads> is not one of {list(TIRADS_VALUES)}; "
            "treated as missing"
        )
        tirads = None
    margins = re.sub(r"-\s*", " ", f["margins"].lower()).strip() or None
    calcs = f["calcifications"].lower() or None
    if calcs is not None and calcs.endswith("calcification"):
        calcs += "s"
    out = {
        "age": age,
        "sex": _SEX.get(f["sex"].lower()),
        "composition": f["composition"].lower() or None,
        "echogenicity": f["echogenicity"].lower() or None,
        "margins": margins,
        "calcifications": calcs,
        "tirads": tirads,
        "reporteco": f["reporteco"] or None,
        "center": CENTER,
    }
    if label == "tirads_binary":
        out["label"] = math.nan if tirads is None else float(tirads in TIRADS_MALIGNANT)
    elif callable(label):
        value = label(
            dict(f, tirads=tirads or "", margins=margins or "", calcifications=calcs or "")
        )
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out["label"] = math.nan
        elif value in (0, 1):
            out["label"] = float(value)
        else:
            raise ValueError(
                f"label function returned {value!r} for case {case.case_id} "
                f"({str(case.xml)!r}); expected 0, 1, NaN or None"
            )
    return out


def _columns(label) -> list[str]:
    cols = [
        "patient_id",
        "case_id",
        "image",
        "longitudinal",
        "transverse",
        "longitudinal_roi",
        "transverse_roi",
        "longitudinal_panel",
        "transverse_panel",
        "seam_x",
        "view_assignment",
        "age",
        "sex",
        "composition",
        "echogenicity",
        "margins",
        "calcifications",
        "tirads",
        "reporteco",
        "nodule_size_px",
        "aspect_ratio",
        "center",
    ]
    return cols + (["label"] if label is not None else [])


def _patient_id(case_id: int) -> str:
    return f"ddti-{case_id:03d}"


def _natural(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


# --------------------------------------------------------------------------- output


def _make_report(cases, images, duplicates, excluded, frame) -> DDTIReport:
    image_rows = [
        {
            "case_id": i.case_id,
            "image": i.name,
            "md5": i.md5,
            "layout": i.layout,
            "seam_x": i.seam,
            "seam_score": i.score,
            "n_polygons": i.n_polygons,
            "status": i.status,
        }
        for i in sorted(images, key=lambda i: (i.case_id, i.index))
    ]
    excluded_frame = pd.DataFrame(excluded, columns=["case_id", "patient_id", "reason", "detail"])
    excluded_frame = excluded_frame.sort_values("case_id", kind="stable").reset_index(drop=True)
    paired = int((frame["view_assignment"] != "single").sum()) if len(frame) else 0
    counts = {
        "images": sum(1 for i in images if i.path is not None),
        "dual-panel images": sum(1 for i in images if i.layout == "dual"),
        "duplicates dropped": len(duplicates),
        "cases returned": len(frame),
        "paired cases": paired,
        "single-view cases": len(frame) - paired,
        "excluded cases": len(excluded_frame),
    }
    if "label" in frame.columns and len(frame):
        paired_rows = frame["view_assignment"] != "single"
        counts["labelled paired cases"] = int(frame.loc[paired_rows, "label"].notna().sum())
        counts["label = 1 / 0"] = (
            f"{int((frame['label'] == 1).sum())} / {int((frame['label'] == 0).sum())}"
        )
    return DDTIReport(
        images=pd.DataFrame(
            image_rows,
            columns=[
                "case_id",
                "image",
                "md5",
                "layout",
                "seam_x",
                "seam_score",
                "n_polygons",
                "status",
            ],
        ),
        excluded=excluded_frame,
        duplicates=pd.DataFrame(duplicates, columns=["image", "case_id", "duplicate_of", "md5"]),
        n_cases=len(cases) + sum(1 for e in excluded if e["reason"] == "malformed XML"),
        counts=counts,
    )


def _write(frame: pd.DataFrame, out_dir: Path, overwrite: bool) -> pd.DataFrame:
    from PIL import Image

    from thyronet.datasets._cohort import save_cohort
    from thyronet.schema import VIEW_COLUMNS, format_roi, roi_column

    manifest = out_dir / "manifest.csv"
    base = out_dir.resolve()
    to_save = frame.copy()
    complete = tuple(v for v in VIEW_COLUMNS if to_save[v].map(_present).all())
    for view in VIEW_COLUMNS:
        if view in complete:
            continue
        # save_cohort stores views that every row has; a view some rows lack
        # (single_view="keep") is written here, with an empty cell where missing.
        cells = []
        for pid, value in zip(to_save["patient_id"], to_save[view], strict=True):
            if not _present(value):
                cells.append("")
                continue
            target = base / "images" / f"{_safe(pid)}_{view}.png"
            if target.exists() and not overwrite:
                raise FileExistsError(
                    f"image file {str(target)!r} already exists; pass overwrite=True to replace it"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.round(value * 255).astype(np.uint8)).save(target)
            cells.append(str(target.relative_to(base)))
        to_save[view] = cells
        to_save[roi_column(view)] = to_save[roi_column(view)].map(format_roi)
    manifest = save_cohort(to_save, manifest, views=complete, overwrite=overwrite)
    stored = pd.read_csv(manifest, usecols=list(VIEW_COLUMNS), dtype=str, keep_default_na=False)
    result = frame.copy()
    for view in VIEW_COLUMNS:
        result[view] = [str(base / p) if p else None for p in stored[view]]
    return result


def _present(value) -> bool:
    return isinstance(value, np.ndarray)


def _safe(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)

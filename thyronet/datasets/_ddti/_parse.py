"""Reading DDTI: case XML files, image files, exact duplicates, and the seam of
dual-panel frames with each outline assigned to its half."""

from __future__ import annotations

import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy.ndimage import median_filter

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


def _patient_id(case_id: int) -> str:
    return f"ddti-{case_id:03d}"


def _natural(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]

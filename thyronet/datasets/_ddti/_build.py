"""Building the DDTI cohort: the pair (or lone view) of each case, its columns, the
report of what happened to every case and image, and the files written with ``out_dir``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from thyronet.datasets._cohort import save_cohort
from thyronet.datasets._ddti._parse import (
    _SEX,
    CENTER,
    SINGLE_VIEW_ELONGATION,
    TIE_RATIO,
    TIRADS_MALIGNANT,
    TIRADS_VALUES,
    _Case,
    _Image,
    _patient_id,
)
from thyronet.datasets._io import safe_name, write_png
from thyronet.schema import VIEW_COLUMNS, format_roi, roi_column


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
            target = write_png(
                base / "images" / f"{safe_name(pid)}_{view}.png", value, overwrite=overwrite
            )
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

"""The cohort schema: column names, clinical categories and validation.

A cohort is a :class:`pandas.DataFrame`, one row per patient. The columns are
described in ``docs/cohort.md``; this module is the single place that names them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

VIEW_COLUMNS: tuple[str, ...] = ("longitudinal", "transverse")
"""The two ultrasound views of the nodule's largest section."""

ROI_SUFFIX = "_roi"
"""A view column ``v`` may have a ROI column ``v + ROI_SUFFIX`` holding ``(x0, y0, x1, y1)``."""

LABEL_COLUMN = "clnm"
COHORT_COLUMN = "cohort"
CENTER_COLUMN = "center"
ID_COLUMN = "patient_id"
COHORTS: tuple[str, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class ClinicalVariable:
    """One clinical indicator of the paper's Table 1.

    Parameters
    ----------
    name : str
        Column name in a cohort.
    kind : {"numeric", "binary", "ordinal", "categorical"}
        How the indicator is encoded.
    categories : tuple of str
        Allowed values for non-numeric indicators, in their natural order
        (for binary ones the second is the "positive" value).
    description : str
        What the column holds, with its unit.
    """

    name: str
    kind: str
    categories: tuple[str, ...] = ()
    description: str = ""


CLINICAL_VARIABLES: tuple[ClinicalVariable, ...] = (
    ClinicalVariable("age", "numeric", description="age at ultrasound, years"),
    ClinicalVariable("sex", "binary", ("female", "male"), "patient sex"),
    ClinicalVariable(
        "location",
        "categorical",
        ("upper", "middle", "lower", "isthmus"),
        "tumour location: upper/middle/lower segment of the lobe, or isthmus",
    ),
    ClinicalVariable("size", "numeric", description="maximum nodule diameter, mm"),
    ClinicalVariable(
        "aspect_ratio", "numeric", description="anteroposterior / transverse diameter"
    ),
    ClinicalVariable("ete", "binary", ("absent", "present"), "extrathyroidal extension"),
    ClinicalVariable(
        "echogenicity",
        "ordinal",
        ("hyper_isoechoic", "hypoechoic", "markedly_hypoechoic"),
        "echogenicity relative to thyroid parenchyma / strap muscles",
    ),
    ClinicalVariable("margin", "binary", ("clear", "unclear"), "nodule margin"),
    ClinicalVariable("shape", "binary", ("regular", "irregular"), "nodule shape"),
    ClinicalVariable(
        "vascularity",
        "categorical",
        ("I", "II", "III", "IV"),
        "Adler-type vascularity grade (Type I-IV)",
    ),
    ClinicalVariable(
        "calcification",
        "categorical",
        ("absent", "micro", "coarse", "mixed"),
        "calcification type",
    ),
    ClinicalVariable("capsular_contact", "binary", ("absent", "present"), "capsular contact"),
    ClinicalVariable(
        "discontinuous_capsule", "binary", ("absent", "present"), "discontinuous capsule"
    ),
)
"""The 13 clinical indicators, in the order of the paper's Methods section."""

CLINICAL_COLUMNS: tuple[str, ...] = tuple(v.name for v in CLINICAL_VARIABLES)
CLINICAL_BY_NAME: Mapping[str, ClinicalVariable] = {v.name: v for v in CLINICAL_VARIABLES}
NUMERIC_COLUMNS = tuple(v.name for v in CLINICAL_VARIABLES if v.kind == "numeric")
CATEGORICAL_COLUMNS = tuple(v.name for v in CLINICAL_VARIABLES if v.kind != "numeric")

DISPLAY_LABELS: Mapping[str, str] = {
    # clinical indicators (numeric ones with their unit)
    "age": "Age, years",
    "sex": "Sex",
    "location": "Tumour location",
    "size": "Maximum diameter, mm",
    "aspect_ratio": "Aspect ratio",
    "ete": "Extrathyroidal extension",
    "echogenicity": "Echogenicity",
    "margin": "Margin",
    "shape": "Shape",
    "vascularity": "Vascularity (Adler grade)",
    "calcification": "Calcification",
    "capsular_contact": "Capsular contact",
    "discontinuous_capsule": "Discontinuous capsule",
    # their levels
    "female": "Female",
    "male": "Male",
    "upper": "Upper",
    "middle": "Middle",
    "lower": "Lower",
    "isthmus": "Isthmus",
    "absent": "Absent",
    "present": "Present",
    "hyper_isoechoic": "Hyper-/isoechoic",
    "hypoechoic": "Hypoechoic",
    "markedly_hypoechoic": "Markedly hypoechoic",
    "clear": "Clear",
    "unclear": "Unclear",
    "regular": "Regular",
    "irregular": "Irregular",
    "I": "Type I",
    "II": "Type II",
    "III": "Type III",
    "IV": "Type IV",
    "micro": "Microcalcification",
    "coarse": "Coarse",
    "mixed": "Mixed",
    "(missing)": "Missing",
    # other columns and the statistics of tables
    "clnm": "CLNM",
    "cohort": "Cohort",
    "variable": "Characteristic",
    "level": "Level",
    "statistic": "Statistic",
    "p_value": "P",
    "test": "Test",
}
"""Human-readable labels of the schema's columns, category levels and table columns: the
one mapping reports and tables use (``ete`` -> "Extrathyroidal extension",
``hyper_isoechoic`` -> "Hyper-/isoechoic", ``p_value`` -> "P"). See :func:`display_label`."""


def display_label(name: str) -> str:
    """The human-readable label of a column, level or table column name.

    :data:`DISPLAY_LABELS` when it has ``name``; otherwise ``name`` with underscores
    as spaces and its first letter capitalised.

    Examples
    --------
    >>> display_label("ete"), display_label("p_value"), display_label("tumour_grade")
    ('Extrathyroidal extension', 'P', 'Tumour grade')
    """
    name = str(name)
    if name in DISPLAY_LABELS:
        return DISPLAY_LABELS[name]
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]


PLAUSIBLE_RANGES: dict[str, tuple[float, float, bool]] = {
    "age": (0.0, 120.0, True),
    "size": (0.0, 100.0, False),
    "aspect_ratio": (0.0, 20.0, False),
}
"""Plausible values of the numeric indicators: ``(low, high, low_included)``; ``high`` is
included. Values outside are refused by :func:`validate_cohort` (pass ``ranges=`` to
override; ``None`` for a column turns its check off)."""


class CohortError(ValueError):
    """A cohort table that does not follow the schema; the message names the column and rows."""


def roi_column(view: str) -> str:
    """Name of the ROI column of ``view`` (``"longitudinal"`` -> ``"longitudinal_roi"``)."""
    return f"{view}{ROI_SUFFIX}"


def _rows(index: Iterable, limit: int = 5) -> str:
    items = list(index)
    shown = ", ".join(repr(i) for i in items[:limit])
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return f"{shown}{more}"


def parse_roi(value, *, column: str = "roi", row=None) -> tuple[int, int, int, int] | None:
    """Turn a ROI cell into ``(x0, y0, x1, y1)`` or ``None`` when it is missing.

    Accepts a 4-sequence, an array, or a string such as ``"(10, 20, 110, 90)"``
    or ``"10 20 110 90"`` (how a manifest stores it).
    """
    where = f"column {column!r}" + (f", row {row!r}" if row is not None else "")
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        text = value.strip().strip("()[]")
        if not text:
            return None
        parts = text.replace(",", " ").split()
        try:
            value = [float(p) for p in parts]
        except ValueError:
            raise CohortError(f"ROI box in {where} is not four numbers: {value!r}") from None
    try:
        box = np.asarray(value, dtype=float).ravel()
    except (TypeError, ValueError):
        raise CohortError(f"ROI box in {where} is not four numbers: {value!r}") from None
    if box.size != 4 or not np.all(np.isfinite(box)):
        raise CohortError(
            f"ROI box in {where} must be four finite numbers (x0, y0, x1, y1); got {value!r}"
        )
    if np.all(np.abs(box) <= 1) and np.any(box != 0):
        raise CohortError(
            f"ROI box in {where} is {value!r}: it looks like fractions of the image size; "
            "give pixels (x0, y0, x1, y1)"
        )
    x0, y0, x1, y1 = (round(b) for b in box)
    if x1 <= x0 or y1 <= y0:
        raise CohortError(
            f"ROI box in {where} is empty: (x0, y0, x1, y1) = {(x0, y0, x1, y1)}; "
            "x1 must exceed x0 and y1 must exceed y0"
        )
    return x0, y0, x1, y1


def format_roi(box) -> str:
    """Write a ROI box as the manifest string ``"x0 y0 x1 y1"`` (empty when missing)."""
    if box is None or (isinstance(box, float) and np.isnan(box)):
        return ""
    return " ".join(str(int(v)) for v in box)


def validate_cohort(
    frame: pd.DataFrame,
    *,
    views: Iterable[str] = VIEW_COLUMNS,
    clinical: bool | Iterable[str] = True,
    label: bool = True,
    label_column: str = LABEL_COLUMN,
    ranges: Mapping[str, tuple[float, float, bool] | None] | None = None,
) -> pd.DataFrame:
    """Check a cohort table against the schema and return it, normalised.

    The returned frame is a copy: clinical categories are lower-cased/stripped
    strings, numeric indicators are floats, the label is an integer 0/1 and ROI
    cells are tuples. The input frame is never modified.

    Parameters
    ----------
    frame : DataFrame
        The cohort.
    views : iterable of str
        View columns that must be present and non-missing.
    clinical : bool or iterable of str
        Require the 13 clinical indicators (``True``), none (``False``) or only
        those named (e.g. the ones a fitted model uses).
    label : bool
        Require the label column with values 0/1.
    label_column : str
        Name of the label column.
    ranges : mapping, optional
        Overrides of :data:`PLAUSIBLE_RANGES` (``{"age": (0, 130, True)}``; ``None``
        turns a column's range check off).

    Raises
    ------
    CohortError
        Naming the column and the offending rows.

    Examples
    --------
    >>> from thyronet.datasets import make_ptmc_cohort, validate_cohort
    >>> cohort = make_ptmc_cohort(n_patients=20, image_size=32, random_state=0)
    >>> validate_cohort(cohort).shape[0]
    20
    """
    if not isinstance(frame, pd.DataFrame):
        raise CohortError(f"a cohort must be a pandas DataFrame, got {type(frame).__name__}")
    duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if duplicated:
        raise CohortError(f"cohort has duplicated column name(s) {duplicated}; keep one of each")
    out = frame.copy()
    views = tuple(views)
    if ID_COLUMN in out.columns:
        ids = out[ID_COLUMN].astype(str)
        dup = ids.duplicated(keep=False)
        if dup.any():
            raise CohortError(
                f"column {ID_COLUMN!r} must be unique; {sorted(set(ids[dup]))[:5]} appear more "
                f"than once, in row(s) {_rows(out.index[dup.to_numpy()])} (a patient in two "
                "cohorts leaks training data into evaluation)"
            )
    checked = _clinical_variables(clinical)
    required = list(views)
    required += [var.name for var in checked]
    if label:
        required.append(label_column)
    missing = [c for c in required if c not in out.columns]
    if missing:
        raise CohortError(
            f"cohort is missing required column(s) {missing}; it has {list(out.columns)}"
        )

    for view in views:
        col = out[view]
        empty = col.map(is_missing)
        if empty.any():
            raise CohortError(
                f"view column {view!r} is missing (NaN/empty) in row(s) "
                f"{_rows(out.index[empty.to_numpy()])}"
            )
        roi = roi_column(view)
        if roi in out.columns:
            out[roi] = [
                parse_roi(v, column=roi, row=i) for i, v in zip(out.index, out[roi], strict=True)
            ]

    if len(views) == 2 and all(v in out.columns for v in views):
        first, second = (out[v] for v in views)
        same = np.array(
            [isinstance(a, str) and a == b for a, b in zip(first, second, strict=True)], bool
        )
        if same.any():
            raise CohortError(
                f"view columns {views[0]!r} and {views[1]!r} name the same image file in "
                f"row(s) {_rows(out.index[same])}; each view must be its own image"
            )

    if checked:
        limits = {**PLAUSIBLE_RANGES, **(ranges or {})}
        for var in checked:
            out[var.name] = _validate_clinical(out[var.name], var)
            if var.kind == "numeric":
                _check_range(out[var.name], var, limits.get(var.name))

    if label:
        out[label_column] = _validate_label(out[label_column], label_column)

    if COHORT_COLUMN in out.columns:
        values = out[COHORT_COLUMN].astype("string").str.strip().str.lower()
        bad = ~values.isin(COHORTS)
        if bad.any():
            raise CohortError(
                f"column {COHORT_COLUMN!r} has unknown value(s) "
                f"{sorted(set(values[bad].astype(str)))} in row(s) "
                f"{_rows(out.index[bad.to_numpy()])}; allowed: {list(COHORTS)}"
            )
        out[COHORT_COLUMN] = values.astype(object)
    return out


def _clinical_variables(clinical: bool | Iterable[str]) -> list[ClinicalVariable]:
    if isinstance(clinical, (bool, np.bool_)):
        return list(CLINICAL_VARIABLES) if clinical else []
    if isinstance(clinical, str):
        raise TypeError(f"clinical takes a bool or column names, not the string {clinical!r}")
    names = list(clinical)
    unknown = [n for n in names if n not in CLINICAL_COLUMNS]
    if unknown:
        raise ValueError(
            f"unknown clinical indicator(s) {unknown}; the indicators are {list(CLINICAL_COLUMNS)}"
        )
    return [var for var in CLINICAL_VARIABLES if var.name in names]


def is_missing(value) -> bool:
    """True for a missing cohort cell: ``None``, ``NaN``, ``pd.NA``/``NaT`` or a blank string."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _validate_clinical(column: pd.Series, var: ClinicalVariable) -> pd.Series:
    if var.kind == "numeric":
        values = pd.to_numeric(column, errors="coerce")
        bad = values.isna() & column.notna()
        if bad.any():
            raise CohortError(
                f"clinical column {var.name!r} ({var.description}) must be numeric; "
                f"row(s) {_rows(column.index[bad.to_numpy()])} hold "
                f"{list(column[bad].astype(str).unique()[:5])}"
            )
        return values.astype(float)
    normalised = column.map(lambda v: v if is_missing(v) else str(v).strip())
    lookup = {c.lower(): c for c in var.categories}
    mapped = normalised.map(lambda v: None if is_missing(v) else lookup.get(v.lower(), v))
    bad = mapped.notna() & ~mapped.isin(var.categories)
    if bad.any():
        raise CohortError(
            f"clinical column {var.name!r} has unknown category "
            f"{sorted(set(mapped[bad].astype(str)))} in row(s) "
            f"{_rows(column.index[bad.to_numpy()])}; allowed: {list(var.categories)}"
        )
    return mapped.astype(object)


def _check_range(values: pd.Series, var: ClinicalVariable, limits) -> None:
    infinite = np.isinf(values.to_numpy(dtype=float))
    if infinite.any():
        raise CohortError(
            f"clinical column {var.name!r} ({var.description}) must be finite; row(s) "
            f"{_rows(values.index[infinite])} hold infinity"
        )
    if limits is None:
        return
    low, high, low_included = limits
    above = values > high
    below = values < low if low_included else values <= low
    bad = (above | below).to_numpy()
    if bad.any():
        interval = f"{'[' if low_included else '('}{low:g}, {high:g}]"
        raise CohortError(
            f"clinical column {var.name!r} ({var.description}) is outside its plausible range "
            f"{interval} in row(s) {_rows(values.index[bad])}: "
            f"{list(values[bad].unique()[:5])} (thyronet.schema.PLAUSIBLE_RANGES; override "
            "with validate_cohort(ranges=...))"
        )


def _validate_label(column: pd.Series, name: str) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    bad = ~values.isin([0, 1])
    if bad.any():
        raise CohortError(
            f"label column {name!r} must be 0/1; row(s) {_rows(column.index[bad.to_numpy()])} "
            f"hold {list(column[bad].astype(str).unique()[:5])}"
        )
    return values.astype(int)

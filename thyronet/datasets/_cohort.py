"""Cohort manifests on disk: :func:`load_cohort` and :func:`save_cohort`."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from thyronet.datasets._io import safe_name, write_png
from thyronet.schema import (
    ID_COLUMN,
    LABEL_COLUMN,
    VIEW_COLUMNS,
    CohortError,
    format_roi,
    roi_column,
    validate_cohort,
)

_READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def load_cohort(
    path: str | os.PathLike,
    *,
    views: Iterable[str] = VIEW_COLUMNS,
    clinical: bool | Iterable[str] = True,
    label: bool = True,
    label_column: str = LABEL_COLUMN,
    check_files: bool = True,
    columns: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Read a cohort manifest (CSV or Parquet) and validate it.

    Relative image paths are resolved against the manifest's folder, ROI cells
    (``"x0 y0 x1 y1"``) become tuples, categories are checked against the schema.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` or ``.parquet`` manifest.
    views : iterable of str
        View columns holding image paths.
    clinical, label : bool
        Require the 13 clinical indicators (or, for ``clinical``, only those named)
        / the 0/1 label (``False`` for new
        patients to predict).
    label_column : str
        Name of the label column.
    check_files : bool
        Check that every image file exists (cheap; images are read later, lazily).
    columns : iterable of str, optional
        Keep only these columns (with ``patient_id`` and the ROI columns of the
        views kept, when present) before validating: the rest of the manifest is
        ignored, whatever it holds. Columns named here that the manifest lacks are
        an error naming them.

    Returns
    -------
    DataFrame
        One row per patient, view columns holding absolute paths.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from thyronet.datasets import load_cohort, make_ptmc_cohort
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> _ = make_ptmc_cohort(n_patients=12, image_size=32, out_dir=out, random_state=0)
    >>> load_cohort(out / "manifest.csv").shape[0]
    12
    """
    path = Path(path)
    if path.is_dir():
        inside = sorted(
            p.name for p in path.iterdir() if p.suffix.lower() in _READERS and p.is_file()
        )[:3]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise CohortError(
            f"cohort manifest {str(path)!r} is a directory; give the manifest CSV/Parquet "
            f"file{hint}"
        )
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise CohortError(f"cohort manifest {str(path)!r} must be .csv or .parquet")
    if not path.is_file():
        raise CohortError(f"cohort manifest {str(path)!r} does not exist")
    kwargs = {"dtype": {"patient_id": str}} if reader is pd.read_csv else {}
    try:
        frame = reader(path, **kwargs)
    except (OSError, ValueError) as exc:  # pandas parser errors and pyarrow's are ValueErrors
        raise CohortError(f"cannot read cohort manifest {str(path)!r}: {exc}") from exc
    if reader is pd.read_csv:
        _check_csv_header(path)
    views = tuple(views)
    if columns is not None:
        frame = _keep_columns(frame, list(columns), views, path)
    base = path.resolve().parent
    for view in views:
        if view not in frame.columns:
            continue
        frame[view] = [_resolve(v, base) for v in frame[view]]
        if check_files:
            for row, value in zip(frame.index, frame[view], strict=True):
                if isinstance(value, str) and not Path(value).is_file():
                    raise CohortError(
                        f"image file {value!r} (column {view!r}, row {row!r}) "
                        f"listed in {str(path)!r} does not exist"
                    )
    return validate_cohort(
        frame, views=views, clinical=clinical, label=label, label_column=label_column
    )


def _check_csv_header(path: Path) -> None:
    """Refuse repeated column names, which pandas would silently rename (``age.1``)."""
    try:
        header = pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0]
    except (OSError, ValueError, IndexError) as exc:
        raise CohortError(f"cannot read cohort manifest {str(path)!r}: {exc}") from exc
    names = [str(n).strip() for n in header]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CohortError(
            f"cohort manifest {str(path)!r} has duplicated column name(s) {repeated}; "
            "keep one of each"
        )


def _keep_columns(
    frame: pd.DataFrame, columns: list[str], views: tuple[str, ...], path: Path
) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CohortError(
            f"cohort manifest {str(path)!r} lacks column(s) {missing}; it has "
            f"{list(map(str, frame.columns))}"
        )
    rois = [roi_column(v) for v in views if v in columns]
    keep = [ID_COLUMN, *columns, *rois]
    return frame.loc[:, [c for c in dict.fromkeys(keep) if c in frame.columns]]


def _resolve(value, base: Path):
    if isinstance(value, str) and value.strip():
        p = Path(value.strip()).expanduser()
        return str(p if p.is_absolute() else (base / p))
    return value


def save_cohort(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    *,
    views: Iterable[str] = VIEW_COLUMNS,
    image_dir: str | os.PathLike | None = "images",
    overwrite: bool = False,
) -> Path:
    """Write a cohort as a CSV or Parquet manifest.

    Image paths inside the manifest's folder are stored relative to it, so the
    folder can be moved. Views held as in-memory arrays are written as 8-bit PNG
    files under ``image_dir`` (relative to the manifest's folder) first; the input
    frame itself is not modified. Existing files are never replaced unless
    ``overwrite=True``.

    Parameters
    ----------
    frame : DataFrame
        The cohort.
    path : str or path-like
        Target ``.csv`` or ``.parquet`` file.
    views : iterable of str
        View columns.
    image_dir : str or path-like or None
        Where in-memory views are written; ``None`` makes them an error.
    overwrite : bool
        Replace an existing manifest or image file.

    Returns
    -------
    Path
        The manifest path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from thyronet.datasets import make_ptmc_cohort, save_cohort, load_cohort
    >>> cohort = make_ptmc_cohort(n_patients=8, image_size=32, random_state=0)
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "cohort.csv"
    >>> load_cohort(save_cohort(cohort, target)).shape[0]
    8
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise CohortError(f"cohort manifest {str(path)!r} must be .csv or .parquet")
    if path.exists() and not overwrite:
        raise CohortError(f"{str(path)!r} already exists; pass overwrite=True to replace it")
    base = path.resolve().parent
    base.mkdir(parents=True, exist_ok=True)
    out = frame.copy()
    ids = out["patient_id"].astype(str) if "patient_id" in out.columns else out.index.astype(str)
    for view in views:
        if view not in out.columns:
            continue
        out[view] = [
            _store_view(value, base, image_dir, f"{pid}_{view}", view, row, overwrite)
            for row, pid, value in zip(out.index, ids, out[view], strict=True)
        ]
        roi = roi_column(view)
        if roi in out.columns:
            out[roi] = out[roi].map(format_roi)
    if suffix == ".csv":
        out.to_csv(path, index=False)
    else:
        out.to_parquet(path, index=False)
    return path


def _store_view(value, base: Path, image_dir, stem: str, view: str, row, overwrite: bool):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""  # a missing view stays missing; load_cohort reports it if it is required
    if isinstance(value, (str, os.PathLike)):
        p = Path(value)
        try:
            return str(p.resolve().relative_to(base))
        except ValueError:
            return str(p)
    if isinstance(value, np.ndarray):
        if image_dir is None:
            raise CohortError(
                f"view {view!r} of row {row!r} is an in-memory array; "
                "pass image_dir= to write it as an image file"
            )
        if value.ndim != 2:
            raise CohortError(
                f"view {view!r} of row {row!r} must be a 2-D image, got shape {value.shape}"
            )
        target = base / image_dir / f"{safe_name(stem)}.png"
        try:
            write_png(target, np.asarray(value, dtype=np.float64), overwrite=overwrite)
        except FileExistsError as exc:
            raise CohortError(str(exc)) from None
        return str(target.relative_to(base))
    raise CohortError(
        f"view {view!r} of row {row!r} must be a file path or a 2-D array, "
        f"got {type(value).__name__}"
    )

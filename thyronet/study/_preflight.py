"""Checks before a study trains anything: settings, the output folder, every image.

:func:`preflight` runs at the start of :func:`~thyronet.study.run_study`, so that a
misspelt registry name, an unwritable output folder or a corrupt image of the
test cohort fails in seconds with one line naming the problem, not after hours of
training.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from thyronet.backbones import get_backbone
from thyronet.fusion import get_fusion
from thyronet.imaging import ImageError, ImageWarning, crop_roi, read_image
from thyronet.plugins import UnknownEntryError, get_registry
from thyronet.schema import ID_COLUMN, VIEW_COLUMNS, CohortError, parse_roi, roi_column
from thyronet.study._config import StudyConfig, StudyError

__all__ = ["check_images", "check_output", "check_settings", "preflight"]


def preflight(
    frame: pd.DataFrame,
    config: StudyConfig,
    out: Path | None,
    *,
    say: Callable[[str], None] | None = None,
) -> None:
    """Everything :func:`check_settings`, :func:`check_output` and :func:`check_images` check.

    Raises
    ------
    StudyError
        The first problem found, in one line.
    """
    check_settings(config)
    if out is not None:
        check_output(out)
    check_images(frame, progress=bool(config.verbose), say=say, margin=config.roi_margin)


def check_settings(config: StudyConfig) -> None:
    """Every registry name of the configuration resolves (fusion, backbone, classifiers)."""
    try:
        get_fusion(config.fusion)
    except UnknownEntryError as err:
        raise StudyError(f"config key 'fusion': {_message(err)}") from None
    try:
        get_backbone(config.backbone)
        config.model_params()
    except (UnknownEntryError, ValueError) as err:
        raise StudyError(f"config key 'backbone': {_message(err)}") from None
    registry = get_registry("classifiers")
    unknown = [c for c in config.classifiers or () if c not in registry]
    if unknown:
        raise StudyError(
            f"config key 'classifiers': unknown classifier(s) {unknown}; registered: "
            f"{', '.join(sorted(registry))}"
        )


def _message(err: BaseException) -> str:
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


def check_output(out: Path) -> None:
    """``out`` is a folder (created with its parents if missing) that can be written to."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StudyError(f"output folder {str(out)!r} is a file; give a folder as --out")
    parent = next((p for p in (out, *out.parents) if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise StudyError(f"cannot create output folder {str(out)!r}: {str(parent)!r} is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise StudyError(f"cannot write to output folder {str(out)!r}: {reason}") from None


def check_images(
    frame: pd.DataFrame,
    *,
    progress: bool = False,
    n_jobs: int | None = None,
    say: Callable[[str], None] | None = None,
    margin: float = 0.0,
) -> int:
    """Decode every image file of every cohort (threads) and crop it to its ROI.

    Returns how many images were read. An image that is constant after cropping to
    its ROI box (enlarged by ``margin``) would fuse to a blank channel: one
    :class:`~thyronet.imaging.ImageWarning` names all such patients and views.

    Raises
    ------
    StudyError
        An image is missing, corrupt, oversized or not 2-D, or its ROI box is not
        four pixel coordinates inside it (the message names the file, column and row).
    """
    n = len(frame)
    ids = list(frame[ID_COLUMN]) if ID_COLUMN in frame.columns else None
    jobs = []
    for column in VIEW_COLUMNS:
        if column not in frame.columns:
            continue
        roi_col = roi_column(column)
        rois = list(frame[roi_col]) if roi_col in frame.columns else [None] * n
        for i, (row, value) in enumerate(zip(frame.index, frame[column], strict=True)):
            if isinstance(value, (str, os.PathLike)):
                who = f"{ID_COLUMN} {ids[i]!r}" if ids is not None else f"row {row!r}"
                jobs.append((value, row, column, roi_col, rois[i], who))
    if not jobs:
        return 0
    if say is not None:
        say(f"checking that all {len(jobs)} images decode")
    workers = n_jobs or min(8, os.cpu_count() or 1)

    def decode(job) -> bool:
        """Whether the image is constant after cropping."""
        value, row, column, roi_col, roi, _ = job
        image = read_image(value, row=row, column=column)
        box = parse_roi(roi, column=roi_col, row=row)
        if box is not None:
            where = f"image file {str(value)!r}, column {column!r}, row {row!r}"
            image = crop_roi(image, box, margin=margin, where=where)
        return bool(image.size) and float(image.min()) == float(image.max())

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="checking images", unit="img", leave=False, disable=None)
    blank = []
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for job, constant in zip(jobs, pool.map(decode, jobs), strict=True):
                if constant:
                    blank.append(job)
                if bar is not None:
                    bar.update()
    except (ImageError, CohortError) as err:
        raise StudyError(str(err)) from None
    finally:
        if bar is not None:
            bar.close()
    if blank:
        _warn_blank(blank)
    return len(jobs)


def _warn_blank(blank: list) -> None:
    shown = [f"{who} ({column})" for _, _, column, _, _, who in blank[:20]]
    more = f" and {len(blank) - 20} more" if len(blank) > 20 else ""
    warnings.warn(
        f"{len(blank)} image(s) are constant after cropping to the ROI, so they fuse to a "
        f"blank channel: {', '.join(shown)}{more}; check the image files and ROI boxes",
        ImageWarning,
        stacklevel=3,
    )

"""Checks before a study trains anything: settings, the output folder, every image.

:func:`preflight` runs at the start of :func:`~thyronet.study.run_study`, so that a
misspelt registry name, an unwritable output folder or a corrupt image of the
test cohort fails in seconds with one line naming the problem, not after hours of
training.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from thyronet.backbones import get_backbone
from thyronet.fusion import get_fusion
from thyronet.imaging import ImageError, read_image
from thyronet.plugins import UnknownEntryError, get_registry
from thyronet.schema import VIEW_COLUMNS
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
    check_images(frame, progress=bool(config.verbose), say=say)


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
) -> int:
    """Decode every image file of every cohort (threads); return how many were read.

    Raises
    ------
    StudyError
        An image is missing, corrupt, oversized or not 2-D (the message names the
        file, column and row).
    """
    jobs = [
        (value, row, column)
        for column in VIEW_COLUMNS
        if column in frame.columns
        for row, value in frame[column].items()
        if isinstance(value, (str, os.PathLike))
    ]
    if not jobs:
        return 0
    if say is not None:
        say(f"checking that all {len(jobs)} images decode")
    workers = n_jobs or min(8, os.cpu_count() or 1)

    def decode(job):
        value, row, column = job
        read_image(value, row=row, column=column)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="checking images", unit="img", leave=False, disable=None)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(decode, jobs):
                if bar is not None:
                    bar.update()
    except ImageError as err:
        raise StudyError(str(err)) from None
    finally:
        if bar is not None:
            bar.close()
    return len(jobs)

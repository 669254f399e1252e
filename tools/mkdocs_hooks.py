"""mkdocs hooks: run the documentation's executed examples in a scratch folder.

The ``python exec="on"`` blocks of ``docs/`` run during ``mkdocs build`` (through
markdown-exec). They write files (cohorts, figures, models) under relative paths;
these hooks make the working directory a fresh temporary folder for the build, so
nothing lands in the repository, use matplotlib's non-interactive backend, print
pandas tables up to 110 characters wide, and log
how long each page's examples took.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time

_state: dict[str, str] = {}
_started: dict[str, float] = {}
log = logging.getLogger("mkdocs.hooks.thyronet")


def on_pre_build(config, **kwargs) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:  # printed tables as wide as the page's code blocks, not pandas' 80 columns
        import pandas as pd
    except ImportError:  # pragma: no cover
        pass
    else:
        pd.set_option("display.width", 110)
        pd.set_option("display.max_columns", 12)
    _state["cwd"] = os.getcwd()
    _state["scratch"] = tempfile.mkdtemp(prefix="thyronet-docs-")
    os.chdir(_state["scratch"])


def on_post_build(config, **kwargs) -> None:
    os.chdir(_state.pop("cwd"))
    shutil.rmtree(_state.pop("scratch"), ignore_errors=True)


def on_page_markdown(markdown, page, **kwargs):
    _started[page.file.src_uri] = time.perf_counter()
    return markdown


def on_page_content(html, page, **kwargs):
    seconds = time.perf_counter() - _started.pop(page.file.src_uri, time.perf_counter())
    if seconds >= 1:
        log.info("%s: rendered with its examples in %.1f s", page.file.src_uri, seconds)
    return html


def on_build_error(error, **kwargs) -> None:
    if "cwd" in _state:
        on_post_build(None)

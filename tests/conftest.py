"""Fixtures of the test suite (the seeds and plugin isolation live in ../conftest.py)."""

from __future__ import annotations

import os

import pytest

DDTI_ROOT_ENV = "THYRONET_DDTI_ROOT"


@pytest.fixture(scope="session")
def ddti_root():
    """The shared DDTI copy (``../shared/data/ddti`` beside the repository), or skip."""
    from pathlib import Path

    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "ddti"
    root = Path(os.environ.get(DDTI_ROOT_ENV, default))
    if not (root / "xml").is_dir():
        pytest.skip(f"DDTI data not found at {root} (set {DDTI_ROOT_ENV})")
    return root


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: skipped, with the reason, on a machine without it."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(autouse=True, scope="module")
def _fresh_joblib_workers():
    """Each test module starts with fresh joblib (loky) worker processes.

    loky reuses its workers across ``Parallel`` calls and retires a worker whose
    memory grew by over 300 MB since its first task. A worker that first ran a light
    task (``bootstrap_validate`` refitting a logistic regression) and then trains a
    CNN is retired that way, and with joblib 1.5 the grid search that was using it
    then waits forever. Shutting the pool down between modules keeps one module's
    workers out of the next.
    """
    yield
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)


@pytest.fixture
def terminal(capsys, monkeypatch):
    """stderr captured by ``capsys`` that says it is a terminal: progress bars draw only
    on a terminal (a log file gets one line per step), so tests of the bars use this."""
    from _pytest.capture import CaptureIO  # capsys swaps sys.stderr in only at call time

    monkeypatch.setattr(CaptureIO, "isatty", lambda self: True)
    return capsys

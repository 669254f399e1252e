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

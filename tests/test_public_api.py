"""Every public name of thyronet 0.1 still imports from where it did (issue L moved the
code into one sub-package per step; the old paths re-export). The list was taken from
the last flat layout; ``thyronet.plugins.entry_names`` was removed as unused."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

NAMES = [
    tuple(line.split())
    for line in (Path(__file__).with_name("public_names_v0_1.txt")).read_text().splitlines()
    if line.strip()
]


def test_the_list_is_not_empty():
    assert len(NAMES) > 150


@pytest.mark.parametrize(("module", "name"), NAMES, ids=[f"{m}.{n}" for m, n in NAMES])
def test_public_name_still_imports(module, name):
    assert hasattr(importlib.import_module(module), name)

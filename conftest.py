"""Set-up of every test (``tests/``) and docstring example (``thyronet/``, run by
``--doctest-modules``): fixed seeds, a fresh plugin manager each time, no installed
plugins, a headless matplotlib backend."""

from __future__ import annotations

import random
import sys

import matplotlib
import numpy as np
import pytest

# Installed third-party plugins must not leak into thyronet's own test run
# (datasette's ``sys._called_from_test`` pattern); tests that need entry points
# ask for them explicitly with ``get_plugin_manager(load_entrypoints=True)``.
sys._thyronet_called_from_test = True
matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _seed_and_fresh_plugins(monkeypatch):
    """Fix every seed and start each test with a fresh default plugin manager."""
    from thyronet.plugins import DISABLE_ENV, reset_plugins

    monkeypatch.delenv(DISABLE_ENV, raising=False)
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:  # pragma: no cover
        pass
    else:
        torch.manual_seed(0)
    reset_plugins()
    yield
    reset_plugins()

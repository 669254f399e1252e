"""Load the installed plugin through its real entry point for every test."""

import pytest
import torch
from thyronet.testing import installed_plugins


@pytest.fixture(autouse=True)
def thyronet_plugins():
    """thyronet's default plugin manager, with thyronet-twostream loaded from its entry point."""
    torch.manual_seed(0)
    with installed_plugins("thyronet-twostream") as pm:
        yield pm

"""Load the installed plugin through its real entry point for every test."""

import pytest
from thyronet.testing import installed_plugins


@pytest.fixture(autouse=True)
def thyronet_plugins():
    """thyronet's default plugin manager, with thyronet-multiview loaded from its entry point."""
    with installed_plugins("thyronet-multiview") as pm:
        yield pm

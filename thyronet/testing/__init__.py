"""Contract checks for thyronet plugins, in the spirit of scikit-learn's ``check_estimator``.

A plugin author calls these in the plugin's own test suite:

- :func:`check_fusion` — a fusion strategy for :class:`thyronet.DualChannelFuser`;
- :func:`check_backbone` — a CNN backbone for :class:`thyronet.SkorchCNN`;
- :func:`check_classifier` — a candidate classifier for
  :class:`thyronet.ClassifierSelector`;
- :func:`check_plugin` — every entry one plugin registers, with the checks above.

Each check takes a registered name (or the entry itself, before registering it)
and raises :class:`AssertionError` with a message naming the entry and what is
wrong; it returns ``None`` when the entry keeps the contract.

thyronet's own test run never loads installed plugins (``sys._thyronet_called_from_test``);
a plugin's test suite needs the opposite. :func:`installed_plugins` makes the
default plugin manager load the installed entry points for the duration of a
``with`` block (or a pytest fixture) and checks that the plugin under test is
among them::

    # conftest.py of a plugin distribution
    import pytest
    from thyronet.testing import installed_plugins

    @pytest.fixture(autouse=True)
    def thyronet_plugins():
        with installed_plugins("thyronet-multiview") as pm:
            yield pm

The modules: ``_harness`` (:func:`installed_plugins` and what the checks share),
``_fusion``, ``_backbone``, ``_classifier`` (one check each) and ``_plugin``
(:func:`check_plugin`).
"""

from thyronet.testing._backbone import check_backbone
from thyronet.testing._classifier import check_classifier
from thyronet.testing._fusion import check_fusion
from thyronet.testing._harness import installed_plugins
from thyronet.testing._plugin import check_plugin

__all__ = [
    "check_backbone",
    "check_classifier",
    "check_fusion",
    "check_plugin",
    "installed_plugins",
]

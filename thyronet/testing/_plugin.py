"""Every contract check of one plugin's entries (:func:`check_plugin`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from thyronet import plugins as _plugins
from thyronet.testing._backbone import check_backbone
from thyronet.testing._classifier import check_classifier
from thyronet.testing._fusion import check_fusion

_CHECKS: dict[str, Callable[..., None]] = {
    "fusions": check_fusion,
    "backbones": check_backbone,
    "classifiers": check_classifier,
}


def check_plugin(
    plugin: str, pm: pluggy.PluginManager | None = None, **check_params: dict[str, Any]
) -> list[tuple[str, str]]:
    """Run the contract check of every entry that one plugin registers.

    Parameters
    ----------
    plugin : str
        The plugin's name: its entry-point name (``thyronet plugins`` lists them) or
        a built-in module such as ``"thyronet._builtins.fusions"``.
    pm : pluggy.PluginManager or None
        The manager; ``None`` uses the default one (inside
        :func:`installed_plugins` it loads the installed plugins).
    **check_params : dict
        Keyword arguments per kind, e.g. ``backbones={"check_estimators": False}``.

    Returns
    -------
    list of (kind, name)
        What was checked.

    Raises
    ------
    AssertionError
        The plugin is not loaded, registers nothing, or an entry breaks its contract.

    Examples
    --------
    >>> from thyronet.testing import check_plugin
    >>> check_plugin("thyronet._builtins.fusions")[:2]
    [('fusions', 'longitudinal'), ('fusions', 'mean')]
    """
    pm = pm if pm is not None else _plugins.default_plugin_manager()
    if not pm.has_plugin(plugin):
        loaded = ", ".join(name for name, _ in pm.list_name_plugin())
        raise AssertionError(f"plugin {plugin!r} is not loaded; loaded plugins: {loaded}")
    unknown = sorted(set(check_params) - set(_CHECKS))
    if unknown:
        raise ValueError(f"unknown kind(s) {unknown}; known: {sorted(_CHECKS)}")
    checked: list[tuple[str, str]] = []
    with _plugins.use_plugin_manager(pm):
        for kind, check in _CHECKS.items():
            registry = _plugins.get_registry(kind)
            names = sorted(e.name for e in registry.entries.values() if e.plugin == plugin)
            for name in names:
                check(name, **check_params.get(kind, {}))
                checked.append((kind, name))
    if not checked:
        raise AssertionError(f"plugin {plugin!r} registers nothing")
    return checked

"""What every contract check shares: the plugin manager of a plugin's test suite,
registering an entry for the checks, resolving an entry and failing with its name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from types import SimpleNamespace
from typing import Any

import pluggy

from thyronet import plugins as _plugins
from thyronet.hookspecs import hookimpl


@contextmanager
def installed_plugins(*distributions: str) -> Iterator[pluggy.PluginManager]:
    """Use a plugin manager that loads the installed plugins inside a ``with`` block.

    The manager loads entry points explicitly (so it works inside any test run,
    thyronet's included) and is made the default one with
    :func:`thyronet.plugins.use_plugin_manager`: ``DualChannelFuser(strategy=...)``,
    ``SkorchCNN(backbone=...)`` and the checks of this module find the plugins'
    entries. The previous default manager is restored afterwards.

    Parameters
    ----------
    *distributions : str
        Distributions (as ``pip`` names them, e.g. ``"thyronet-multiview"``) whose
        ``thyronet`` entry points must be installed and loaded. Only their plugins
        are loaded (with thyronet's built-ins), so other installed plugins cannot
        change the test; with no name, every installed plugin is loaded.

    Yields
    ------
    pluggy.PluginManager

    Raises
    ------
    AssertionError
        A distribution is not installed, has no ``thyronet`` entry point, or its
        plugin was not loaded (blocked by ``THYRONET_DISABLE_PLUGINS``, failed to
        import, or invalid: the :class:`~thyronet.plugins.PluginWarning` says why).

    Examples
    --------
    >>> from thyronet.testing import installed_plugins
    >>> from thyronet.plugins import get_registry
    >>> with installed_plugins() as pm:
    ...     "stack" in get_registry("fusions")
    True
    """
    wanted: dict[str, list] = {}
    for dist_name in distributions:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise AssertionError(
                f"distribution {dist_name!r} is not installed; install it (e.g. "
                f"`pip install -e .` in its folder) before running its tests"
            ) from None
        eps = [ep for ep in dist.entry_points if ep.group == _plugins.ENTRY_POINT_GROUP]
        if not eps:
            raise AssertionError(
                f"distribution {dist_name!r} declares no entry point in the group "
                f"{_plugins.ENTRY_POINT_GROUP!r}; add [project.entry-points.thyronet] to its "
                "pyproject.toml"
            )
        wanted[dist_name] = eps
    names = [ep.name for eps in wanted.values() for ep in eps]
    pm = _plugins.get_plugin_manager(load_entrypoints=names if distributions else True)
    for dist_name, eps in wanted.items():
        for ep in eps:
            if not pm.has_plugin(ep.name):
                why = (
                    "it is blocked by " + _plugins.DISABLE_ENV
                    if pm.is_blocked(ep.name)
                    else "it failed to import or is invalid (see the PluginWarning)"
                )
                raise AssertionError(f"plugin {ep.name!r} of {dist_name!r} was not loaded: {why}")
    with _plugins.use_plugin_manager(pm):
        yield pm


def _with_entry(kind: str, name: str, value: Any):
    """A context where the default manager (built-ins only) also registers ``value``.

    Lets the checks run an entry that is not registered yet through the estimators
    that look names up.
    """
    hook_name = _plugins.REGISTRY_KINDS[kind][0]
    pm = _plugins.get_plugin_manager(load_entrypoints=False)
    taken = _plugins.build_registry(kind, pm)
    if name in taken:
        raise AssertionError(
            f"{kind[:-1]} name {name!r} is already registered by plugin "
            f"{taken.entry(name).plugin!r}; choose another name"
        )

    def impl(register):
        register(name, value)

    plugin = SimpleNamespace(**{hook_name: hookimpl(impl)})
    pm.register(plugin, name=f"thyronet.testing[{name}]")
    return _plugins.use_plugin_manager(pm)


def _resolve(kind: str, entry: Any, expected: type | None) -> tuple[str, Any, bool]:
    """``(name, value, registered)`` for a registered name or an entry object."""
    label = kind[:-1]
    if isinstance(entry, str):
        registry = _plugins.get_registry(kind)
        if entry not in registry:
            available = ", ".join(sorted(registry)) or "(none)"
            raise AssertionError(
                f"{label} {entry!r} is not registered; registered {kind}: "
                f"{available} (is the plugin installed, and its tests run "
                "inside thyronet.testing.installed_plugins()?)"
            )
        value = registry[entry]
        if expected is not None and not isinstance(value, expected):
            raise AssertionError(
                f"{label} {entry!r} is a {type(value).__name__}, not a {expected.__name__}"
            )
        return entry, value, True
    if expected is not None and not isinstance(entry, expected):
        raise AssertionError(
            f"expected a registered {label} name or a {expected.__name__}, "
            f"got {type(entry).__name__}"
        )
    name = getattr(entry, "name", None) or getattr(entry, "__name__", None) or repr(entry)
    return str(name), entry, False


def _fail(prefix: str, message: str) -> AssertionError:
    return AssertionError(f"{prefix}: {message}")
